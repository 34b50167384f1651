"""YOLOv5-SPD models: building blocks, the detection head, the YAML parser, the YOLOv5 -> SPD transfer."""
