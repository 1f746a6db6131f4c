"""The demo's URLconf and its one view: one ORM read and one small write per request."""

from __future__ import annotations

import random

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from .models import Item

SEED_ITEMS = 50


def hit(request: HttpRequest, alias: str) -> HttpResponse:
    """Count the items, then add 1 to a random item's qty in a transaction, on *alias*."""
    if alias not in settings.DATABASES:
        raise Http404(alias)
    items = Item.objects.using(alias)
    total = items.filter(qty__gte=0).count()
    with transaction.atomic(using=alias):
        items.filter(name=f"item-{random.randrange(SEED_ITEMS)}").update(qty=F("qty") + 1)
    return HttpResponse(str(total), content_type="text/plain")


urlpatterns = [path("hit/<slug:alias>/", hit)]
