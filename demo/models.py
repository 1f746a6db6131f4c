"""The demo app's one model."""

from __future__ import annotations

from django.db import models


class Item(models.Model):  # type: ignore[misc]  # (no django-stubs)
    name = models.CharField(max_length=50, unique=True)
    qty = models.IntegerField(default=0)

    class Meta:
        app_label = "demo"
