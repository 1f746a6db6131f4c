"""Optional Django app: add ``"pool_core"`` to INSTALLED_APPS for system checks
(``pool_core.E001`` ...) and ``manage.py pool_status``. The backends work without it."""

from __future__ import annotations

from django.apps import AppConfig


class PoolCoreConfig(AppConfig):
    name = "pool_core"
    label = "pool_core"
    verbose_name = "Connection pools"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
