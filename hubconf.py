"""torch.hub entry points, as yolov5 users load models from Python:

    model = torch.hub.load("path/to/yolov5-spd", "custom", path="best.pt", source="local")
    model = torch.hub.load("path/to/yolov5-spd", "space_depth_n", source="local")   # weights/space_depth_n.pt
    model = torch.hub.load("path/to/yolov5-spd", "yolov5n", source="local", weights="yolov5n.pt")
    model = torch.hub.load("path/to/yolov5-spd", "space_depth_s", source="local", pretrained=False, classes=3)
    model.conf = 0.5                        # also iou, classes, max_det, agnostic (anything else: an error)
    results = model("bus.jpg", size=640)    # or RGB numpy arrays (yolov5's hub order), PIL images, URLs, lists
    results.print(); results.save(); results.pandas().xyxy[0]

A named entry point builds that config; ``pretrained=True`` reads ``weights=`` or ``<name>.pt`` from ./weights/,
the checkout's weights/ or the current folder, checked to be that graph. Weights are read by the project's safe
checkpoint reader (no pickled code runs); nothing is downloaded.
"""

dependencies = ["torch", "torchvision", "yaml", "cv2", "numpy"]


def custom(path: str = "best.pt", device: str = "", conf: float = 0.25, iou: float | None = None, imgsz: int = 640,
           autoshape: bool = True):
    """A :class:`utils.detection.hub.HubModel` for any supported weights file (ours, yolov5*.pt, ultralytics'
    yolov8*.pt / yolo11*.pt, exports); ``iou`` None: the model family's (YOLOv5 0.45, YOLOv8 / YOLO11 0.7)."""
    from utils.detection.hub import hub_model

    return hub_model(path, device=device, conf=conf, iou=iou, imgsz=imgsz, autoshape=autoshape)


def _named(config: str):
    def entry(pretrained: bool = True, weights: str | None = None, classes: int = 80, device: str = "",
              conf: float = 0.25, iou: float | None = None, imgsz: int = 640, autoshape: bool = True):
        from utils.detection.hub import named_hub_model

        return named_hub_model(config, pretrained=pretrained, weights=weights, classes=classes, device=device,
                               conf=conf, iou=iou, imgsz=imgsz, autoshape=autoshape)

    entry.__name__ = config
    entry.__doc__ = (f"The {config}.yaml detector as a hub model: pretrained from a local {config}.pt (or "
                     f"``weights=``), or untrained with ``classes`` classes (``pretrained=False``).")
    return entry


space_depth_n, space_depth_s, space_depth_m, space_depth_l = (_named(f"space_depth_{s}") for s in "nsml")
yolov5n, yolov5s, yolov5m, yolov5l = (_named(f"yolov5{s}") for s in "nsml")
yolov8n, yolov8s, yolov8m, yolov8l = (_named(f"yolov8{s}") for s in "nsml")
yolo11n, yolo11s, yolo11m, yolo11l = (_named(f"yolo11{s}") for s in "nsml")
