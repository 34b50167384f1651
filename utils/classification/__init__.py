"""Classification as a task: the task (task), its datasets (data), the generated set (synthetic) and the
predictor (predictor) behind classify/train.py, val.py and predict.py."""
