"""Celery tasks, named ``workers.<topic>.<verb>``: thin glue between ids, services and the ML engine.

Workers import every module of this package at start (``skelex_web/celery.py``), which
registers the tasks; this file imports nothing so that ``python -m workers.tasks.bench`` and
the helpers here can be imported before Django is set up.
"""
