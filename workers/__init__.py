"""Workers: the pure cores (``imaging``, ``ml``) and the Celery glue (``tasks``)."""
