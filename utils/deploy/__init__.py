"""Deployment: exports (exporters), running exported models behind the model interface (backends), INT8
quantisation (quantize) and the checkpoint conversion command (convert_weights)."""
