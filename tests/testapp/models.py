from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=100)
    n = models.IntegerField(default=0)

    class Meta:
        app_label = "testapp"
