"""Arena actions, one function per thing a user does: open and close a comparison, generate its
matches (in a job), serve the next match and gather the results.

A match is an ``AnnotationItem`` of kind arena with one candidate from each of two versions; an
annotator's choice, tie or skip is saved by ``annotations.services.submit_judgement``.
"""
from __future__ import annotations

import dataclasses
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from itertools import combinations, islice
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from annotations.models import AnnotationItem, Assignment, Candidate, Judgement, Prompt, normalise_text
from annotations.pool import with_open_slots
from annotations.services import assign_first_open, open_assignment, wait_for_item
from core import jobs, queues
from core.actions import ActionRefused
from training.generation import annotation_decoding
from training.ml.dedupe import candidate_key
from training.models import ModelVersion

from .models import ARENA_JOBS, Comparison
from .results import ArenaResults, compute_results

if TYPE_CHECKING:
    from training.ml.generate import Generator

logger = logging.getLogger(__name__)

MAX_MATCHES = 10_000
MATCH_CHUNK = 25  # matches sampled per round: each version is loaded once per round
SECONDS_PER_MATCH = 6  # generous CPU budget for two samples, for the RQ job timeout
ARENA = AnnotationItem.Kind.ARENA


# --- staff: open, close, retry ---------------------------------------------------------------------


def open_comparison(
    *, name: str, versions: Iterable[ModelVersion], matches_wanted: int, user=None
) -> Comparison:
    """Create an open comparison and queue its match generation (queue ``evaluation``, after commit)."""
    name = " ".join((name or "").split())
    chosen = list({version.pk: version for version in versions}.values())
    if not name:
        raise ActionRefused("Give the comparison a name.")
    if len(chosen) < 2:
        raise ActionRefused(f"A comparison needs at least two different model versions; {len(chosen)} given.")
    if not 1 <= matches_wanted <= MAX_MATCHES:
        raise ActionRefused(f"Matches wanted must be between 1 and {MAX_MATCHES}; {matches_wanted} given.")
    for version in chosen:
        version.refuse_if_pruned("compared in the arena")
    missing = [version.name for version in chosen if not version.path.is_dir()]
    if missing:
        raise ActionRefused(f"No checkpoint directory on disk for: {', '.join(missing)}.", 409)
    if not Prompt.objects.for_annotation().exists():
        raise ActionRefused("There are no prompts to compare on: import prompts first.", 409)
    with transaction.atomic():
        comparison = Comparison.objects.create(name=name, matches_wanted=matches_wanted, created_by=user)
        comparison.versions.set(chosen)
        _queue_generation(comparison)
    return comparison


def _queue_generation(comparison: Comparison) -> None:
    ARENA_JOBS.enqueue_on_commit(comparison.pk, job_timeout=600 + SECONDS_PER_MATCH * comparison.matches_wanted)


def close_comparison(*, comparison: Comparison, user=None) -> Comparison:
    """Stop serving the comparison's matches; its judgements and results stay."""
    with transaction.atomic():
        locked = Comparison.objects.select_for_update().get(pk=comparison.pk)
        if not locked.is_open:
            raise ActionRefused(f"Comparison “{locked.name}” is already closed.", 409)
        locked.is_open = False
        locked.closed_at = timezone.now()
        locked.save(update_fields=["is_open", "closed_at"])
    logger.info("comparison %s closed by %s", locked.pk, user)
    return locked


def retry_generation(*, comparison: Comparison) -> Comparison:
    """Queue generation again for a failed (or short) open comparison; only missing matches are made."""
    with transaction.atomic():
        locked = Comparison.objects.select_for_update().get(pk=comparison.pk)
        if not locked.is_open:
            raise ActionRefused(f"Comparison “{locked.name}” is closed.", 409)
        if locked.is_generating:
            raise ActionRefused(f"Comparison “{locked.name}” is already {locked.get_status_display().lower()}.", 409)
        if locked.status == Comparison.Status.FAILED:
            ARENA_JOBS.retry(locked.pk)
        else:  # ready but short of matches: generate the missing ones
            Comparison.objects.filter(pk=locked.pk).update(status=Comparison.Status.QUEUED, error="")
            _queue_generation(locked)
    locked.refresh_from_db()
    return locked


# --- the generation job ----------------------------------------------------------------------------


def generate_matches(
    comparison_id: int,
    *,
    generator_factory: Callable[[str], Generator] | None = None,
    chunk_size: int = MATCH_CHUNK,
) -> int:
    """Sample the comparison's missing matches; returns how many were created.

    Claims the row (QUEUED → GENERATING) so a retried or duplicated job does nothing; a failure
    marks it FAILED with the traceback. Stops early when the comparison is closed.
    """
    from training.ml.generate import get_generator

    jobs.reap_all()
    if not ARENA_JOBS.claim(comparison_id, error=""):
        logger.info("comparison %s is not queued; nothing to generate", comparison_id)
        return 0
    try:
        with ARENA_JOBS.heartbeat(comparison_id):
            created = _generate(Comparison.objects.get(pk=comparison_id), generator_factory or get_generator, chunk_size)
    except Exception as exc:
        ARENA_JOBS.fail(comparison_id, exc)
        raise
    ARENA_JOBS.finish(comparison_id, generated_at=timezone.now())
    return created


def _schedule(prompt_ids: list[int], pairs: list[tuple[ModelVersion, ModelVersion]], taken: set) -> Iterator:
    """(prompt id, version pair) combinations, each at most once: every prompt once before any repeats.

    Within a round consecutive prompts cycle through the (shuffled) pairs, so pairs get equal
    shares of the matches.
    """
    for round_ in range(len(pairs)):
        for position, prompt_id in enumerate(prompt_ids):
            pair = pairs[(position + round_) % len(pairs)]
            key = (prompt_id, frozenset(v.pk for v in pair))
            if key not in taken:
                yield prompt_id, pair


def _generate(comparison: Comparison, factory: Callable[[str], Generator], chunk_size: int) -> int:
    versions = list(comparison.versions.order_by("id"))
    pairs = list(combinations(versions, 2))
    random.shuffle(pairs)
    sides_of: dict[tuple[int, int], set[int]] = defaultdict(set)  # (item, prompt) -> its two versions
    for item_id, prompt_id, version_id in Candidate.objects.filter(item__comparison=comparison).values_list(
        "item_id", "item__prompt_id", "model_version_id"
    ):
        sides_of[(item_id, prompt_id)].add(version_id)
    taken = {(prompt_id, frozenset(ids)) for (_, prompt_id), ids in sides_of.items()}
    prompt_ids = list(Prompt.objects.for_annotation().values_list("id", flat=True))
    random.shuffle(prompt_ids)
    schedule = _schedule(prompt_ids, pairs, taken)
    decoding = dataclasses.replace(annotation_decoding(), num_candidates=1)
    created, loaded = 0, None
    while (missing := comparison.matches_wanted - len(sides_of) - created) > 0:
        if not Comparison.objects.filter(pk=comparison.pk, is_open=True).exists():
            logger.info("comparison %s was closed; generation stops", comparison.pk)
            break
        chunk = list(islice(schedule, min(chunk_size, missing)))
        if not chunk:
            break  # every prompt × pair is used
        prompts = Prompt.objects.in_bulk([prompt_id for prompt_id, _ in chunk])
        # Load each version once per chunk, starting with the one still in memory from the last chunk.
        needed = sorted({v for _, pair in chunk for v in pair}, key=lambda v: (v.pk != loaded, v.pk))
        outputs: dict[tuple[int, int], tuple[str, int, int, float]] = {}
        provenance: dict = {}
        for version in needed:
            generator, loaded = factory(str(version.path)), version.pk
            mine = [(n, prompt_id) for n, (prompt_id, pair) in enumerate(chunk) if version in pair]
            seed = random.SystemRandom().randrange(2**31)
            sampled = generator.sample_batch([prompts[prompt_id].text for _, prompt_id in mine], decoding, seed=seed)
            provenance = generator.provenance(decoding)  # the backend is the same for every version here
            for (n, _), (rewrite, *_) in zip(mine, sampled):
                outputs[(n, version.pk)] = (normalise_text(rewrite.text), rewrite.seed, rewrite.index, rewrite.seconds)
        identical = 0
        for n, (prompt_id, pair) in enumerate(chunk):
            sides = [(version, outputs[(n, version.pk)]) for version in pair]
            if candidate_key(sides[0][1][0]) == candidate_key(sides[1][1][0]):
                identical += 1
                continue
            random.shuffle(sides)  # candidate ids must not tell which version wrote which side
            _create_match(comparison, prompts[prompt_id], sides, provenance)
            created += 1
        announce_matches_ready(comparison.pk, len(chunk) - identical)  # wakes annotators in /api/arena/next/?wait=
        if identical:
            Comparison.objects.filter(pk=comparison.pk).update(identical_skipped=F("identical_skipped") + identical)
    return created


def _create_match(comparison: Comparison, prompt: Prompt, sides: list, decoding: dict) -> AnnotationItem:
    with transaction.atomic():
        item = AnnotationItem.objects.create(
            prompt=prompt,
            kind=ARENA,
            comparison=comparison,
            model_version=None,
            judgements_needed=settings.ANNOTATION_OVERLAP,
        )
        for version, (text, seed, index, seconds) in sides:
            Candidate.objects.create(
                item=item,
                model_version=version,
                text=text,
                decoding=decoding,
                seed=seed,
                sample_index=index,
                generation_seconds=seconds,
            )
    return item


# --- annotators: the next match --------------------------------------------------------------------


def open_matches(comparison: Comparison | None = None) -> QuerySet[AnnotationItem]:
    """Matches of open comparisons still needing judgements, counting live (unexpired) assignments."""
    items = AnnotationItem.objects.filter(kind=ARENA, comparison__is_open=True, prompt__is_heldout=False)
    if comparison is not None:
        items = items.filter(comparison=comparison)
    return with_open_slots(items)


def matches_for_user(user, comparison: Comparison | None = None) -> QuerySet[AnnotationItem]:
    """Open matches whose prompt ``user`` has not been shown in the same comparison."""
    seen = Assignment.objects.filter(user=user, item__comparison=OuterRef("comparison"), item__prompt=OuterRef("prompt"))
    return open_matches(comparison).exclude(Exists(seen))


def next_match(*, user, comparison: Comparison | None = None) -> Assignment | None:
    """Give ``user`` a match (sides in a fresh random order), or their open one again; None if none."""
    current = open_assignment(user, kind=ARENA)
    if current is not None and current.item.comparison.is_open:
        if comparison is None or current.item.comparison_id == comparison.pk:
            return current
    return assign_first_open(user=user, open_items=matches_for_user(user, comparison), order=lambda items: items.order_by("?"))


def wait_for_match(*, user, comparison: Comparison | None = None, wait_seconds: float) -> Assignment | None:
    """``next_match``, but while matches are being generated wait up to ``wait_seconds`` for one.

    The generation job signals each chunk of new matches (``announce_matches_ready``), so a waiting
    annotator gets one as soon as it is stored; with nothing generating the answer comes at once.
    """
    match = next_match(user=user, comparison=comparison)
    if match is not None or wait_seconds <= 0 or not is_generating(comparison):
        return match
    return wait_for_item(
        lambda: next_match(user=user, comparison=comparison),
        signal_key=matches_ready_key(comparison.pk if comparison is not None else None),
        wait_seconds=wait_seconds,
    )


def matches_ready_key(comparison_id: int | None) -> str:
    """The signal a waiter for this comparison's matches (None: any open comparison's) blocks on."""
    return "arena-ready" if comparison_id is None else f"arena-ready:{comparison_id}"


def announce_matches_ready(comparison_id: int, count: int) -> None:
    """Wake up to ``count`` requests waiting for a match of this comparison, and as many waiting for any."""
    queues.signal(matches_ready_key(comparison_id), count)
    queues.signal(matches_ready_key(None), count)


def is_generating(comparison: Comparison | None = None) -> bool:
    """Whether matches may still appear (an open comparison whose generation is queued or running)."""
    comparisons = Comparison.objects.filter(is_open=True).unfinished()
    return comparisons.filter(pk=comparison.pk).exists() if comparison is not None else comparisons.exists()


# --- results ---------------------------------------------------------------------------------------


def check_results_visible(*, user, comparison: Comparison) -> None:
    """Live results would tell reviewers which side is which version; only staff see them while open."""
    if comparison.is_open and not (user and user.is_staff):
        raise ActionRefused(
            f"Results of “{comparison.name}” are hidden from non-staff while it is open, so judging stays blind; "
            "they appear when staff close it.",
            403,
        )


def comparison_results(*, comparison: Comparison) -> ArenaResults:
    """Win rates and Bradley–Terry ratings from the comparison's choices and ties (skips excluded)."""
    shown: dict[int, dict[int, str]] = defaultdict(dict)
    for candidate_id, item_id, version in Candidate.objects.filter(item__comparison=comparison).values_list(
        "id", "item_id", "model_version__name"
    ):
        shown[item_id][candidate_id] = version
    wins, ties = [], []
    for item_id, kind, chosen in Judgement.objects.filter(
        item__comparison=comparison, kind__in=[Judgement.Kind.CHOICE, Judgement.Kind.TIE]
    ).values_list("item_id", "kind", "chosen_candidate_id"):
        sides = shown[item_id]
        if len(sides) != 2:
            continue
        if kind == Judgement.Kind.TIE:
            ties.append(tuple(sides.values()))
        else:
            loser = next(version for candidate_id, version in sides.items() if candidate_id != chosen)
            wins.append((sides[chosen], loser))
    names = comparison.versions.order_by("name").values_list("name", flat=True)
    return compute_results(wins, ties, versions=names)


def versions_in_open_comparisons() -> dict[int, str]:
    """Versions an open comparison still samples and serves: model-store retention keeps their weights."""
    return {
        pk: f"in the open arena comparison {name!r}"
        for pk, name in Comparison.objects.filter(is_open=True).values_list("versions__id", "name")
        if pk is not None
    }
