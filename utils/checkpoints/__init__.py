"""Checkpoint files: the format and its error (format), writing and reading (files), the allow-list unpickler
(unpickler) and the YOLOv5-family import (yolov5). Rebuilding a model from a checkpoint lives in models.loading."""
