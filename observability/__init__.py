"""What every process shares to be watched: the log format (`logs.py`) and how its Prometheus
metrics are collected and served (`metrics.py`).

Rule of this package: it imports only `settings` from the project, so the web, the worker
and gunicorn's master can all use it.
"""
