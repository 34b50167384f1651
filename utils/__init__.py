"""Utilities of YOLOv5-SPD, one module per concern."""
