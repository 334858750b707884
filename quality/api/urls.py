from django.urls import path

from . import views

urlpatterns = [
    path("annotators/", views.AnnotatorQualityView.as_view(), name="api-quality-annotators"),
    path("versions/", views.VersionQualityView.as_view(), name="api-quality-versions"),
    path("gold/", views.GoldItemView.as_view(), name="api-quality-gold"),
]
