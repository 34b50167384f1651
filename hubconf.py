"""torch.hub entry points, as yolov5 users load models from Python:

    model = torch.hub.load("path/to/yolov5-spd", "custom", path="best.pt", source="local")
    detections = model("bus.jpg")          # or a BGR numpy image, or a list of them
    print(detections[0].to_list())

Weights are read by the project's safe checkpoint reader (no pickled code runs); nothing is downloaded.
"""

dependencies = ["torch", "torchvision", "yaml", "cv2", "numpy"]


def custom(path: str = "best.pt", device: str = "", conf: float = 0.25, iou: float = 0.45, imgsz: int = 640):
    """A :class:`utils.detection.predictor.Detector` for any supported weights file (ours, yolov5*.pt, exports)."""
    from utils.checkpoints.files import resolve_weights
    from utils.detection.predictor import Detector

    return Detector(resolve_weights(path), device=device, imgsz=imgsz, conf_thres=conf, iou_thres=iou)
