from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="quality"),
    path("gold/", views.gold, name="quality-gold"),
]
