"""Experiment trackers (MLflow, Weights & Biases, ClearML, Comet) as training hooks, each an optional extra."""
