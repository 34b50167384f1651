"""Detection as a task, one module per job: the training task (task), its head families (head_families), their
losses and assigner, the COCO evaluator (evaluator), validation (the shared loop and val.py's job), prediction
(the Detector and detect.py's job), results and the hub model."""
