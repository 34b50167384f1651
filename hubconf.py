"""torch.hub entry points, as yolov5 users load models from Python:

    model = torch.hub.load("path/to/yolov5-spd", "custom", path="best.pt", source="local")
    model.conf = 0.5                        # also iou, classes, max_det, agnostic (anything else: an error)
    results = model("bus.jpg", size=640)    # or RGB numpy arrays (yolov5's hub order), PIL images, URLs, lists
    results.print(); results.save(); results.pandas().xyxy[0]

Weights are read by the project's safe checkpoint reader (no pickled code runs); nothing is downloaded.
"""

dependencies = ["torch", "torchvision", "yaml", "cv2", "numpy"]


def custom(path: str = "best.pt", device: str = "", conf: float = 0.25, iou: float | None = None, imgsz: int = 640,
           autoshape: bool = True):
    """A :class:`utils.detection.hub.HubModel` for any supported weights file (ours, yolov5*.pt, ultralytics'
    yolov8*.pt / yolo11*.pt, exports); ``iou`` None: the model family's (YOLOv5 0.45, YOLOv8 / YOLO11 0.7)."""
    if not autoshape:
        raise ValueError("autoshape=False (a raw model) is not offered: the hub model letterboxes, runs NMS and "
                         "returns results; load the checkpoint with models.loading.load_model for the raw module")
    from utils.boxes import NmsSettings
    from utils.checkpoints.files import resolve_weights
    from utils.detection.hub import HubModel
    from utils.detection.prediction import Detector

    nms = NmsSettings.prediction(conf, iou_thres=iou)
    return HubModel(Detector(resolve_weights(path), device=device, imgsz=imgsz, nms=nms))
