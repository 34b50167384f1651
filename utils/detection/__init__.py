"""Detection as a task: the task the engine runs (task), its loss and anchors, the COCO evaluator (metrics),
the evaluation loop val.py and training share (evaluation) and the predictor detect.py and the hub use."""
