"""Stand-in for an Alliance Auth project package (no Django).

Like Auth's generated ``myauth/myauth/__init__.py`` this exposes the Celery
app so that ``celery -A myauth worker`` run from the project directory finds
it.
"""
from .celery import app as celery_app  # noqa: F401

__all__ = ("celery_app",)
