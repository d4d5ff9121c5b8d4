"""The pure ML core: MAE model, checkpoints, embeddings, error maps, boxes, heads, sampling.

Never imports Django or Celery (checked by import-linter in ``make check``), so every model
change is testable on arrays alone: ``python -m workers.ml --help``.
"""
