"""Review actions on preference pairs: approve, reject, flag, swap, edit the gold rewrite.

Every action writes a ``ReviewEvent`` (who, when, before/after) and stamps ``reviewed_by``/``_at``;
the review page, the admin and the API all call these functions.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import PreferencePair, ReviewEvent, normalise_text
from core.actions import ActionRefused

TRACKED = ("status", "flagged", "flag_note", "chosen_text", "rejected_text")
BULK_ACTIONS = ("approve", "reject", "flag", "unflag", "swap")
VERDICTS = ("approve", "reject", "swap", "edit")  # what a reviewer may not do to their own pairs


def _refuse_own_pairs(reviewer, pairs: list[PreferencePair], action: str) -> None:
    """A non-staff reviewer cannot judge their own annotations; staff may (they own the data)."""
    if action not in VERDICTS or reviewer is None or reviewer.is_staff:
        return
    own = [pair.pk for pair in pairs if pair.judgement.user_id == reviewer.pk]
    if own:
        raise ActionRefused(
            f"You cannot {action} your own pairs ({', '.join(map(str, own))}); another reviewer must review them.", 403
        )


def _snapshot(pair: PreferencePair) -> dict:
    return {field: getattr(pair, field) for field in TRACKED}


def _apply(pair: PreferencePair, reviewer, action: str, **changes) -> PreferencePair:
    before = _snapshot(pair)
    for field, value in changes.items():
        setattr(pair, field, value)
    pair.reviewed_by, pair.reviewed_at = reviewer, timezone.now()
    pair.save()
    after = _snapshot(pair)
    ReviewEvent.objects.create(
        pair=pair,
        user=reviewer,
        action=action,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
    )
    return pair


def _locked(pairs: Iterable[PreferencePair] | Iterable[int]) -> list[PreferencePair]:
    ids = [p if isinstance(p, int) else p.pk for p in pairs]
    return list(
        PreferencePair.objects.select_for_update(of=("self",)).select_related("judgement").filter(id__in=ids).order_by("id")
    )


def review_pairs(*, reviewer, pairs: Iterable[PreferencePair] | Iterable[int], action: str, note: str = "") -> int:
    """Apply one bulk ``action`` (approve, reject, flag, unflag, swap) to ``pairs``; returns how many."""
    if action not in BULK_ACTIONS:
        raise ActionRefused(f"Unknown review action {action!r}; use one of {', '.join(BULK_ACTIONS)}.")
    with transaction.atomic():
        locked = _locked(pairs)
        _refuse_own_pairs(reviewer, locked, action)
        for pair in locked:
            if action == "approve":
                _apply(pair, reviewer, action, status=PreferencePair.Status.APPROVED)
            elif action == "reject":
                _apply(pair, reviewer, action, status=PreferencePair.Status.REJECTED)
            elif action == "flag":
                _apply(pair, reviewer, action, flagged=True, flag_note=note or pair.flag_note)
            elif action == "unflag":
                _apply(pair, reviewer, action, flagged=False)
            else:
                _swap(pair, reviewer)
        return len(locked)


def approve_pairs(*, reviewer, pairs) -> int:
    return review_pairs(reviewer=reviewer, pairs=pairs, action="approve")


def reject_pairs(*, reviewer, pairs) -> int:
    return review_pairs(reviewer=reviewer, pairs=pairs, action="reject")


def _swap(pair: PreferencePair, reviewer) -> PreferencePair:
    pair.chosen_candidate, pair.rejected_candidate = pair.rejected_candidate, pair.chosen_candidate
    return _apply(
        pair, reviewer, "swap", chosen_text=pair.rejected_text, rejected_text=pair.chosen_text
    )


def swap_pair(*, reviewer, pair: PreferencePair) -> PreferencePair:
    """Exchange chosen and rejected (the annotator picked the worse one)."""
    with transaction.atomic():
        locked = _locked([pair])[0]
        _refuse_own_pairs(reviewer, [locked], "swap")
        return _swap(locked, reviewer)


def edit_gold_rewrite(*, reviewer, pair: PreferencePair, text: str) -> PreferencePair:
    """Replace the chosen (gold) rewrite; the annotator's original stays in ``original_chosen_text``."""
    text = normalise_text(text or "")
    if not text:
        raise ActionRefused("The gold rewrite cannot be empty.")
    if len(text) > settings.MAX_REWRITE_CHARS:
        raise ActionRefused(f"The gold rewrite is too long: {len(text)} characters, at most {settings.MAX_REWRITE_CHARS}.")
    with transaction.atomic():
        locked = _locked([pair])[0]
        _refuse_own_pairs(reviewer, [locked], "edit")
        if text == locked.rejected_text:
            raise ActionRefused("The gold rewrite must differ from the rejected text.")
        return _apply(locked, reviewer, "edit", chosen_text=text)
