"""Classification as a task, one module per job: the task (task), its figures (evaluator), classify/val.py's job
(validation), the Classifier (prediction), its datasets (data) and the generated set (synthetic)."""
