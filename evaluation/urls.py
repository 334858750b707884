from django.urls import path

from . import views

urlpatterns = [
    path("versions/", views.versions, name="versions"),
    path("versions/<int:pk>/activate/", views.activate, name="version-activate"),
    path("versions/<int:pk>/evaluate/", views.evaluate, name="version-evaluate"),
    path("versions/judge/", views.train_judge, name="judge-train"),
]
