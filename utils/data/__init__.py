"""Data: dataset definitions and label formats (formats; voc, visdrone readers), image reading (images), the
checking scan (scan), the YOLO dataset (dataset) with its augmentations, mosaic and tiles, its loaders (loaders),
the image cache, the label converter (convert) and the embedded generated dataset (synthetic)."""
