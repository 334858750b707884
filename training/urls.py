from django.urls import path

from . import views

urlpatterns = [
    path("versions/", views.versions, name="versions"),
    path("versions/<int:pk>/activate/", views.activate, name="version-activate"),
    path("versions/<int:pk>/evaluate/", views.evaluate, name="version-evaluate"),
    path("runs/", views.runs, name="training-runs"),
    path("runs/<int:pk>/", views.run_detail, name="training-run"),
    path("runs/<int:pk>/cancel/", views.cancel_run, name="training-run-cancel"),
]
