"""Installs the offline ESI client when the worker's environment names a stub (BENCH_ESI_URL)."""

import os

from django.apps import AppConfig


class BenchEsiConfig(AppConfig):
    name = "benchesi"
    verbose_name = "bench: offline ESI"

    def ready(self):
        url = os.environ.get("BENCH_ESI_URL")
        if url:
            from allianceauth.eveonline.providers import open_api_provider

            from .client import StubEsiClient
            # ESIClientProvider.client returns self._client once it is set: Auth's provider methods
            # (get_character, get_affiliations, ...) and everything behind them run unchanged.
            open_api_provider._client = StubEsiClient(url)  # pylint: disable=protected-access
