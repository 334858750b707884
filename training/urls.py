from django.urls import path

from . import views

urlpatterns = [
    path("runs/", views.runs, name="training-runs"),
    path("runs/first/", views.start_first_sft, name="training-first-sft"),
    path("runs/<int:pk>/", views.run_detail, name="training-run"),
    path("runs/<int:pk>/cancel/", views.cancel_run, name="training-run-cancel"),
]
