"""Bench only: Auth's ESI client replaced at its seam, ``open_api_provider`` (see client.py)."""
