"""Roles: annotator (every user), reviewer (the ``reviewer`` group, or staff), admin (staff); and
system accounts (the ``system-account`` group), which own imported work but are not people."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

REVIEWER_GROUP = "reviewer"
# Bookkeeping accounts such as the DetoxifierAI importer: their judgements are a file's, not a person's,
# so per-annotator quality (accuracy, agreement, position bias, speed) leaves them out.
SYSTEM_GROUP = "system-account"


def is_reviewer(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or user.groups.filter(name=REVIEWER_GROUP).exists()))


def role_of(user) -> str:
    if user.is_staff:
        return "admin"
    return "reviewer" if is_reviewer(user) else "annotator"


def make_reviewer(user) -> None:
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    user.groups.add(group)


def make_system_account(user) -> None:
    """Mark ``user`` as a bookkeeping account (an importer), never counted as an annotator."""
    group, _ = Group.objects.get_or_create(name=SYSTEM_GROUP)
    user.groups.add(group)


def is_system_account(user) -> bool:
    return user.groups.filter(name=SYSTEM_GROUP).exists()


def system_account_ids() -> set[int]:
    """Ids of the system accounts (importers): each stands for the many people behind a file, not one."""
    return set(get_user_model().objects.filter(groups__name=SYSTEM_GROUP).values_list("id", flat=True))


def by_people(rows: QuerySet, user_field: str = "user") -> QuerySet:
    """``rows`` without those of system accounts, ``user_field`` naming the rows' user."""
    return rows.exclude(**{f"{user_field}__groups__name": SYSTEM_GROUP})


class IsReviewer(BasePermission):
    message = "Only reviewers can do this."

    def has_permission(self, request, view) -> bool:
        return is_reviewer(request.user)


class IsStaff(BasePermission):
    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
