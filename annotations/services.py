"""Annotation actions, one function per thing a user does. Views, the API and commands call these.

``ActionRefused`` carries the exact message and HTTP status a user sees; nothing is written when
it is raised.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core import hooks, queues
from core.actions import ActionRefused

from . import pool
from .models import (
    AnnotationItem,
    Assignment,
    Candidate,
    Judgement,
    PreferencePair,
    active_model_version,
    normalise_text,
)


def open_assignment(user, kind: str = AnnotationItem.Kind.BEST_OF_N) -> Assignment | None:
    """The user's shown-but-unjudged item of ``kind``, if still reserved for them (a reload shows it again)."""
    cutoff = timezone.now() - timedelta(minutes=settings.ASSIGNMENT_TTL_MINUTES)
    return (
        Assignment.objects.filter(user=user, item__kind=kind, judgement__isnull=True, shown_at__gte=cutoff)
        .select_related("item__prompt")
        .order_by("-shown_at")
        .first()
    )


def next_assignment(*, user) -> Assignment | None:
    """Give ``user`` an item they have not seen, from the active version's pool; None if none is ready.

    Asks for a refill whenever the pool runs low, so the next user normally does not wait.
    """
    current = open_assignment(user)
    if current is not None:
        return current
    version = active_model_version()
    if version is None:
        raise ActionRefused("No model version is active yet: staff must register and activate one.", 409)
    try:
        if settings.GOLD_RATE and random.random() < settings.GOLD_RATE:
            gold = pool.gold_items_for_user(user).order_by("?").first()
            if gold is not None:
                return assign(user=user, item=gold)
        return assign_first_open(user=user, open_items=pool.items_for_user(user, version), order=pool.serving_order)
    finally:
        hooks.announce(hooks.POOL_LOW, version=version)


_waiting_slots: dict[int, threading.BoundedSemaphore] = {}


def _waiting_slot() -> threading.BoundedSemaphore:
    """This process's waiting slots (``NEXT_ITEM_MAX_WAITERS``): each waiter holds a web thread."""
    size = settings.NEXT_ITEM_MAX_WAITERS
    return _waiting_slots.setdefault(size, threading.BoundedSemaphore(size))


def wait_for_assignment(*, user, wait_seconds: float) -> Assignment | None:
    """``next_assignment``, but when nothing is ready wait up to ``wait_seconds`` for a refill.

    The refill job signals through Redis after it stores items (``pool.announce_items_ready``), so
    the wait ends as soon as one is ready instead of after a client's next poll. Returns None at
    once when the pool can bring nothing new for this version (every prompt has an open item).
    """
    assignment = next_assignment(user=user)
    if assignment is not None or wait_seconds <= 0:
        return assignment
    version = active_model_version()
    if version is None or not pool.prompts_waiting(version):
        return None
    return wait_for_item(
        lambda: next_assignment(user=user), signal_key=pool.items_ready_key(version.pk), wait_seconds=wait_seconds
    )


def wait_for_item(take: Callable[[], Assignment | None], *, signal_key: str, wait_seconds: float) -> Assignment | None:
    """Call ``take`` again each time ``signal_key`` is signalled (``core.queues.signal``), and at least
    every ``NEXT_ITEM_RECHECK_SECONDS``, until it gives an assignment or ``wait_seconds`` pass.

    The one long poll behind best-of-N items and arena matches; the caller has already tried once
    and knows something may still arrive. Returns None at once when this process already has
    ``NEXT_ITEM_MAX_WAITERS`` requests waiting (threads stay free for submits); the client then
    retries with backoff.
    """
    slot = _waiting_slot()
    if not slot.acquire(blocking=False):
        return None
    try:
        deadline = time.monotonic() + wait_seconds
        while (left := deadline - time.monotonic()) > 0:
            queues.wait_for_signal(signal_key, min(left, settings.NEXT_ITEM_RECHECK_SECONDS))
            assignment = take()
            if assignment is not None:
                return assignment
    finally:
        slot.release()
    return None


def assign_first_open(
    *, user, open_items: QuerySet[AnnotationItem], order: Callable[[QuerySet[AnnotationItem]], QuerySet[AnnotationItem]]
) -> Assignment | None:
    """Assign ``user`` the first of ``open_items`` in ``order`` that is still open once locked; None if none.

    The one serving path for best-of-N items and arena matches: each candidate item is locked and
    re-checked, so two users racing for an item's last slot cannot both take it.
    """
    for item_id in order(open_items).values_list("id", flat=True)[:20]:
        with transaction.atomic():
            item = AnnotationItem.objects.select_for_update(skip_locked=True).filter(id=item_id).first()
            if item is not None and open_items.filter(id=item_id).exists():
                return assign(user=user, item=item)
    return None


def assign(*, user, item: AnnotationItem) -> Assignment:
    """Show ``item`` to ``user`` with its candidates in a fresh random order, which is recorded."""
    order = list(item.candidates.values_list("id", flat=True))
    random.SystemRandom().shuffle(order)
    return Assignment.objects.create(user=user, item=item, candidate_order=order)


def _validated_rewrite(text: str) -> str:
    text = normalise_text(text or "")
    if not text:
        raise ActionRefused("Write your own rewrite when none of the candidates is acceptable.")
    if len(text) > settings.MAX_REWRITE_CHARS:
        raise ActionRefused(f"Your rewrite is too long: {len(text)} characters, at most {settings.MAX_REWRITE_CHARS}.")
    return text


def submit_judgement(
    *,
    user,
    assignment_id: int,
    candidate_id: int | None = None,
    own_rewrite: str = "",
    skip_reason: str = "",
    tie: bool = False,
    time_spent_ms: int | None = None,
) -> tuple[Judgement, bool]:
    """Save the user's verdict on an item shown to them; returns (judgement, created).

    Exactly one of ``candidate_id`` (a candidate shown to this user for this item), ``own_rewrite``
    (none acceptable), ``tie`` (arena matches only) or ``skip_reason`` is given. A second submit for
    the same item returns the first judgement unchanged. ``time_spent_ms`` is for trusted callers
    (simulations, tests); the API leaves it out, so the time since ``shown_at`` is recorded. A match of
    a closed comparison, or a verdict on an expired reservation someone else now holds, is refused (409).
    """
    given = [candidate_id is not None, bool((own_rewrite or "").strip()), bool(skip_reason), tie]
    if sum(given) != 1:
        raise ActionRefused("Give exactly one of: a candidate id, your own rewrite, or a skip reason.")
    if skip_reason and skip_reason not in Judgement.SkipReason.values:
        raise ActionRefused(f"Unknown skip reason {skip_reason!r}; use one of {', '.join(Judgement.SkipReason.values)}.")
    rewrite = _validated_rewrite(own_rewrite) if given[1] else ""
    try:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update().filter(id=assignment_id, user=user).select_related("item").first()
            )
            if assignment is None:
                raise ActionRefused(f"Item assignment {assignment_id} was not shown to you.", 404)
            existing = Judgement.objects.filter(assignment=assignment).first()
            if existing is not None:
                return existing, False
            item = assignment.item
            if item.kind == AnnotationItem.Kind.ARENA and not item.comparison.is_open:
                raise ActionRefused(f"Comparison “{item.comparison.name}” is closed; it takes no more choices.", 409)
            if not skip_reason:
                _check_slot_still_yours(assignment)
            if tie and assignment.item.kind != AnnotationItem.Kind.ARENA:
                raise ActionRefused("A tie can only be given in an arena match.")
            if rewrite and assignment.item.kind == AnnotationItem.Kind.ARENA:
                raise ActionRefused("An arena match takes a choice of A or B, a tie or a skip, not your own rewrite.")
            judgement = _create_judgement(assignment, candidate_id, rewrite, skip_reason, tie, time_spent_ms)
            if not skip_reason:
                _complete_if_done(item)
    except IntegrityError:  # the concurrent twin of this submit won the race
        existing = Judgement.objects.filter(assignment_id=assignment_id, user=user).first()
        if existing is None:
            raise
        return existing, False
    hooks.announce(hooks.POOL_LOW, version=None)
    return judgement, True


def _complete_if_done(item: AnnotationItem) -> None:
    """Mark ``item`` complete once its non-skip judgements reach ``judgements_needed`` (gold items never).

    Only an optimisation for ``pool.with_open_slots``, which still counts: a flag left unset costs
    speed, never correctness. Call inside the submit's transaction.
    """
    if item.is_gold:
        return
    if Judgement.objects.filter(item=item).exclude(kind=Judgement.Kind.SKIP).count() >= item.judgements_needed:
        AnnotationItem.objects.filter(pk=item.pk).update(is_complete=True)


def _check_slot_still_yours(assignment: Assignment) -> None:
    """Refuse a verdict on an expired reservation whose slot went to someone else, so an item never
    gets more than ``judgements_needed`` verdicts. Gold items have no limit. Locks the item row
    (the lock ``next_assignment`` takes to hand out a slot); call inside the transaction."""
    item = AnnotationItem.objects.select_for_update().get(pk=assignment.item_id)
    cutoff = timezone.now() - timedelta(minutes=settings.ASSIGNMENT_TTL_MINUTES)
    if item.is_gold or assignment.shown_at >= cutoff:
        return
    done = Judgement.objects.filter(item=item).exclude(kind=Judgement.Kind.SKIP).count()
    reserved = (
        Assignment.objects.filter(item=item, judgement__isnull=True, shown_at__gte=cutoff).exclude(pk=assignment.pk).count()
    )
    if done + reserved >= item.judgements_needed:
        raise ActionRefused("This item expired and was given to another annotator; here is a new one.", 409)


def _create_judgement(
    assignment: Assignment, candidate_id: int | None, rewrite: str, skip_reason: str, tie: bool, time_spent_ms: int | None
) -> Judgement:
    order: list[int] = assignment.candidate_order
    if time_spent_ms is None:
        time_spent_ms = int((timezone.now() - assignment.shown_at).total_seconds() * 1000)
    common = dict(
        assignment=assignment, user=assignment.user, item=assignment.item, time_spent_ms=max(0, int(time_spent_ms))
    )
    if skip_reason:
        return Judgement.objects.create(kind=Judgement.Kind.SKIP, skip_reason=skip_reason, **common)
    if tie:
        return Judgement.objects.create(kind=Judgement.Kind.TIE, **common)
    shown = {c.id: c for c in Candidate.objects.filter(id__in=order)}
    if candidate_id is not None:
        if candidate_id not in order:
            raise ActionRefused(f"Candidate {candidate_id} was not shown to you for this item.")
        judgement = Judgement.objects.create(
            kind=Judgement.Kind.CHOICE,
            chosen_candidate=shown[candidate_id],
            chosen_position=order.index(candidate_id) + 1,
            **common,
        )
        chosen_text, rejected = shown[candidate_id].text, [shown[i] for i in order if i != candidate_id]
    else:
        judgement = Judgement.objects.create(kind=Judgement.Kind.NONE_ACCEPTABLE, own_rewrite=rewrite, **common)
        chosen_text, rejected = rewrite, [shown[i] for i in order]
    item = assignment.item
    if item.is_gold:
        return judgement  # gold items test the annotator; they add no training data
    arena = item.kind == AnnotationItem.Kind.ARENA
    PreferencePair.objects.bulk_create(
        PreferencePair(
            judgement=judgement,
            prompt=item.prompt,
            model_version=item.model_version or (judgement.chosen_candidate or candidate).model_version,
            source=PreferencePair.Source.ARENA if arena else PreferencePair.Source.ANNOTATION,
            chosen_candidate=judgement.chosen_candidate,
            rejected_candidate=candidate,
            chosen_text=chosen_text,
            original_chosen_text=chosen_text,
            rejected_text=candidate.text,
            is_own_rewrite=judgement.kind == Judgement.Kind.NONE_ACCEPTABLE,
        )
        for candidate in rejected
        if normalise_text(candidate.text) != chosen_text
    )
    return judgement
