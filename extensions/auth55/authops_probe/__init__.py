"""authops test-bed probe: Celery tasks for tests and benchmarks. NOT part of Alliance Auth.

Copied into the project directory of a stock Auth install (next to manage.py) and enabled with
one line at the end of local.py: ``INSTALLED_APPS += ['authops_probe']``. Auth's Celery app
finds ``authops_probe.tasks`` through ``autodiscover_tasks``. No models, no views, no settings.
"""
