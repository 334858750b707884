"""Roles: annotator (every user), reviewer (the ``reviewer`` group, or staff), admin (staff)."""
from __future__ import annotations

from django.contrib.auth.models import Group
from rest_framework.permissions import BasePermission

REVIEWER_GROUP = "reviewer"


def is_reviewer(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.groups.filter(name=REVIEWER_GROUP).exists()))


def role_of(user) -> str:
    if user.is_staff:
        return "admin"
    return "reviewer" if is_reviewer(user) else "annotator"


def make_reviewer(user) -> None:
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    user.groups.add(group)


class IsReviewer(BasePermission):
    message = "Only reviewers can do this."

    def has_permission(self, request, view) -> bool:
        return is_reviewer(request.user)


class IsStaff(BasePermission):
    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
