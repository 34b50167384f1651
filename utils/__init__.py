"""Utilities of YOLOv5-SPD, one package per role: engine (the training loop), data, detection, classification,
deploy and checkpoints; the modules at this level are primitives every role may use (boxes, plots, logging,
paths, YAML files, memory, precision, devices and DDP, the image-size rule)."""
