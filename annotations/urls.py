from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("annotate/", views.annotate, name="annotate"),
    path("review/", views.review_list, name="review"),
    path("review/bulk/", views.review_bulk, name="review-bulk"),
    path("review/<int:pk>/", views.review_pair, name="review-pair"),
]
