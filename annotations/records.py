"""The rows training and exports are built from: approved pairs and references outside the held-out split.

``training/datasets.py`` and ``annotations/exports.py`` both start from these queries, so a held-out
prompt reaches neither, and "since" is parsed one way everywhere.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from .models import Judgement, PreferencePair, Prompt


def parse_since(value: str | date | datetime | None) -> datetime | None:
    """An ISO date (start of that day, in the site's time zone) or datetime, as an aware datetime.

    Raises ``ValueError`` for text that is neither.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)  # ValueError names the bad text
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def outside_heldout_pairs(pairs: QuerySet[PreferencePair] | None = None) -> QuerySet[PreferencePair]:
    """Pairs whose prompt is not held out (evaluation's prompts never become training or export rows)."""
    return (PreferencePair.objects.all() if pairs is None else pairs).filter(prompt__is_heldout=False)


def outside_heldout_judgements(judgements: QuerySet[Judgement] | None = None) -> QuerySet[Judgement]:
    return (Judgement.objects.all() if judgements is None else judgements).filter(item__prompt__is_heldout=False)


def approved_pairs(pairs: QuerySet[PreferencePair] | None = None) -> QuerySet[PreferencePair]:
    """Approved pairs outside the held-out split, oldest first."""
    return outside_heldout_pairs(pairs).filter(status=PreferencePair.Status.APPROVED).order_by("id")


def reference_prompts(*, source: str | None = None) -> QuerySet[Prompt]:
    """Prompts outside the held-out split that carry human references, in id order."""
    prompts = Prompt.objects.for_annotation().exclude(references=[]).order_by("id")
    return prompts.filter(source=source) if source else prompts


def gold_rewrites(pairs: QuerySet[PreferencePair] | None = None) -> Iterator[list[PreferencePair]]:
    """Approved own rewrites (from ``pairs``, default all), one group per prompt and chosen text.

    An own rewrite yields one pair per rejected candidate, all with the same chosen text; each group
    lists those pairs in id order, groups in the order of their first pair.
    """
    rewrites = approved_pairs(pairs).filter(is_own_rewrite=True)
    rewrites = rewrites.select_related("prompt", "model_version", "judgement__user", "reviewed_by")
    groups: dict[tuple[int, str], list[PreferencePair]] = {}
    for pair in rewrites.iterator(chunk_size=2000):
        groups.setdefault((pair.prompt_id, pair.chosen_text), []).append(pair)
    yield from groups.values()
