from django.urls import path

from . import views

urlpatterns = [
    path("", views.arena, name="arena"),
    path("comparisons/", views.comparisons, name="arena-comparisons"),
    path("comparisons/<int:pk>/", views.comparison_results, name="arena-comparison"),
    path("comparisons/<int:pk>/close/", views.close, name="arena-comparison-close"),
]
