"""Make ``ansible_collections.authops.celery_tuning`` importable for plain pytest runs.

``ansible-test units`` puts the collection on ``sys.path`` itself; a plain ``pytest`` run from the
repository root gets a symlink tree under ``.cache/collections`` instead.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ensure_collection_importable():
    try:
        import ansible_collections.authops.celery_tuning  # noqa: F401  pylint: disable=unused-import
        return
    except ImportError:
        pass
    base = os.path.join(ROOT, ".cache", "collections")
    ns_dir = os.path.join(base, "ansible_collections", "authops")
    link = os.path.join(ns_dir, "celery_tuning")
    os.makedirs(ns_dir, exist_ok=True)
    if not os.path.lexists(link):
        os.symlink(ROOT, link)
    sys.path.insert(0, base)


_ensure_collection_importable()
