from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from annotations.api import views as annotation_api
from training.api import views as training_api

router = DefaultRouter()
router.register("judgements", annotation_api.JudgementViewSet, basename="judgement")
router.register("pairs", annotation_api.PairViewSet, basename="pair")
router.register("prompts", annotation_api.PromptViewSet, basename="prompt")
router.register("versions", training_api.ModelVersionViewSet, basename="version")

api = [
    path("annotate/next/", annotation_api.NextItemView.as_view(), name="api-next-item"),
    path("me/", annotation_api.me, name="api-me"),
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("training/", include("training.urls")),
    path("", include("annotations.urls")),
]
