import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.reliability.webapp.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

if os.environ.get("POOL_SITE_PRELOAD_QUERY"):
    # The master uses the ORM before forking (gunicorn --preload): its pool
    # holds a connection the workers inherit and must never use.
    from django.db import connection  # noqa: E402

    from tests.testapp.models import Note  # noqa: E402

    Note.objects.exists()
    connection.close()
