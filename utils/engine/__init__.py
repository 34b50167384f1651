"""The training engine, task-agnostic: the loop (trainer), its checked options (config), optimiser and schedule
(optim), AutoBatch, and the per-phase timer. It imports no task, model or data code."""
