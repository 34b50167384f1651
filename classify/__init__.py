"""Command-line faces of image classification (yolov5's classify/ convention)."""
