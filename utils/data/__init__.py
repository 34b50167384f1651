"""Data: dataset definitions and label formats (formats), image reading (images), the checking scan (scan),
the YOLO dataset (dataset) and its loaders (loaders)."""
