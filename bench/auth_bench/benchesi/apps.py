"""Installs the offline ESI client when the worker's environment or the settings name a stub (BENCH_ESI_URL)."""

import os

from django.apps import AppConfig
from django.conf import settings


class BenchEsiConfig(AppConfig):
    name = "benchesi"
    verbose_name = "bench: offline ESI"

    def ready(self):
        # the environment: the workers the driver starts; the setting: Auth's own supervisor programs (observe)
        url = os.environ.get("BENCH_ESI_URL") or getattr(settings, "BENCH_ESI_URL", "")
        if url:
            from allianceauth.eveonline.providers import open_api_provider

            from .client import StubEsiClient
            # ESIClientProvider.client returns self._client once it is set: Auth's provider methods
            # (get_character, get_affiliations, ...) and everything behind them run unchanged.
            open_api_provider._client = StubEsiClient(url)  # pylint: disable=protected-access
