"""YOLOv5-SPD models: building blocks, the detection head, the YAML parser."""

import utils  # noqa: F401  (process-wide memory setting for PyTorch; see utils/__init__.py)
