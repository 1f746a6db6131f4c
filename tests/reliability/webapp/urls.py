from django.urls import path

from . import views

urlpatterns = [path("write", views.write), path("awrite", views.awrite), path("ats", views.ats),
               path("ants", views.ants), path("ants_closed", views.ants_closed), path("stats", views.stats)]
