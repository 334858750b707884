"""Arena endpoints under /api/arena/."""
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("comparisons", views.ComparisonViewSet, basename="arena-comparison")

urlpatterns = [
    path("next/", views.NextMatchView.as_view(), name="api-arena-next"),
    path("judgements/", views.ArenaJudgementView.as_view(), name="api-arena-judgements"),
    path("", include(router.urls)),
]
