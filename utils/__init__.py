"""Utilities of YOLOv5-SPD, one module per concern.

Importing the package asks PyTorch to back large CPU tensors with transparent huge pages
(``THP_MEM_ALLOC_ENABLE``, read by PyTorch at its first large allocation). A training step allocates and frees
gigabytes of activations; with 2 MiB pages the kernel takes about a sixth of the page faults, which made
training steps 1.2-1.3x faster on a 2-core machine (benchmarks/speed.py). Set THP_MEM_ALLOC_ENABLE=0 to opt out.
"""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
