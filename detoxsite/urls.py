from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from annotations.api import exports as annotation_exports
from annotations.api import views as annotation_api
from core.views import ObtainExpiringAuthToken, ThrottledLoginView
from evaluation import api as evaluation_api
from training.api import views as training_api

router = DefaultRouter()
router.register("judgements", annotation_api.JudgementViewSet, basename="judgement")
router.register("pairs", annotation_api.PairViewSet, basename="pair")
router.register("prompts", annotation_api.PromptViewSet, basename="prompt")
router.register("versions", evaluation_api.ModelVersionViewSet, basename="version")
router.register("training-runs", training_api.TrainingRunViewSet, basename="training-run")
router.register("evaluations", evaluation_api.EvaluationViewSet, basename="evaluation")

api = [
    path("annotate/next/", annotation_api.NextItemView.as_view(), name="api-next-item"),
    path("me/", annotation_api.me, name="api-me"),
    path("arena/", include("arena.api.urls")),
    path("auth/token/", ObtainExpiringAuthToken.as_view(), name="api-token"),
    path("quality/", include("quality.api.urls")),
    path("exports/preferences.jsonl", annotation_exports.PreferenceExportView.as_view(), name="api-export-preferences"),
    path("exports/sft.jsonl", annotation_exports.SFTExportView.as_view(), name="api-export-sft"),
    path("exports/judgements.jsonl", annotation_exports.JudgementExportView.as_view(), name="api-export-judgements"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("training/", include("evaluation.urls")),  # the versions page, under its usual address
    path("training/", include("training.urls")),
    path("arena/", include("arena.urls")),
    path("quality/", include("quality.urls")),
    path("", include("operations.urls")),
    path("", include("annotations.urls")),
]
