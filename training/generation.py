"""Candidate generation for the annotation pool: sample rewrites with the active version and store
them, with their provenance, as ready annotation items.

Runs in the ``generation`` RQ worker (``training.jobs.refill_pool``), which loads the model once.
The web process only calls ``request_refill`` (torch is imported lazily, by the worker).
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction

from annotations.models import AnnotationItem, Candidate, Prompt, normalise_text
from annotations.pool import announce_items_ready, mark_picked, pick_prompts, ready_count, recent_ready_count
from core import queues

from .models import ModelVersion, TrainingRun

if TYPE_CHECKING:
    from training.ml.generate import DecodingConfig, Generator, SampledRewrite

logger = logging.getLogger(__name__)
REFILL_LOCK_SECONDS = 300
PROMPT_CLAIM_SECONDS = 120  # longer than one batched sampling call
POOL_CHECK_SECONDS = 1  # refills take seconds; checking the pool more often than this buys nothing
EMPTY_POOL_BATCH = 4  # prompts in the first call on an empty pool: items in ~1 s, not a full batch's ~3.6 s


def annotation_decoding() -> DecodingConfig:
    from training.ml.generate import DecodingConfig

    return DecodingConfig(
        num_candidates=settings.CANDIDATES_PER_ITEM,
        temperature=settings.SAMPLING_TEMPERATURE,
        top_p=settings.SAMPLING_TOP_P,
        max_new_tokens=settings.MAX_NEW_TOKENS,
    )


def request_refill(version: ModelVersion | None = None) -> bool:
    """Queue refills of the active version's pool if it is below target; True if one was queued.

    Up to ``GENERATION_WORKERS`` refills run at once (one per worker, each holding its own slot);
    they split the work by claiming prompts (``claim_prompts``).
    """
    if not settings.DETOX_AUTO_REFILL:
        return False
    version = version or ModelVersion.objects.active()
    if version is None or recent_ready_count(version) >= settings.POOL_TARGET:
        return False
    queued = False
    for slot in range(settings.GENERATION_WORKERS):
        if queues.acquire_once(f"refill:{version.pk}:{slot}", REFILL_LOCK_SECONDS):
            queues.enqueue_on_commit("generation", "training.jobs.refill_pool", version.pk, slot)
            queued = True
    return queued


def generation_thread_budget() -> int:
    """Threads for a refill starting now: every core, or 1 while a training run is RUNNING
    (``training.ml.device.split_cpu_threads``), so the two jobs never oversubscribe the CPU."""
    from training.ml.device import available_cores, split_cpu_threads

    running = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).exists()
    return split_cpu_threads(available_cores(), training_running=running).generation


def pool_may_be_low(version: ModelVersion | None = None) -> bool:
    """``hooks.POOL_LOW`` handler (every next-item request and submit announces it): ``request_refill``
    at most once per ``POOL_CHECK_SECONDS`` per version across all web processes, so a busy team
    does not pay a pool count on every request (bench/RESULTS.md, "Team load")."""
    if not settings.DETOX_AUTO_REFILL:
        return False
    version = version or ModelVersion.objects.active()
    if version is None or not queues.acquire_once(f"pool-check:{version.pk}", POOL_CHECK_SECONDS):
        return False
    return request_refill(version)


def candidate_diversity(texts: list[str]) -> float:
    """1 − mean pairwise similarity of the candidates: near 0 when the model is sure, near 1 when not."""
    from difflib import SequenceMatcher
    from itertools import combinations

    pairs = list(combinations(texts, 2))
    if not pairs:
        return 0.0
    return 1 - sum(SequenceMatcher(None, a, b).ratio() for a, b in pairs) / len(pairs)


def generate_items(
    *, prompts: list[Prompt], version: ModelVersion, generator: Generator, decoding: DecodingConfig, attempts: int = 3
) -> list[AnnotationItem]:
    """Sample candidates for all ``prompts`` in one batched call and store them as ready items.

    Candidates that differ only in case, spacing or punctuation collapse into one (``candidate_key``).
    Echoes of the prompt -- the test evaluation scores FL 0 with, plus near-identical characters
    (``is_echo_of_input``) -- never reach annotators: the first is kept on the item (``model_echo``),
    as the model wrote it, for DPO to reject. One-word fragments of a sentence (``is_fragment``) are
    dropped like empty texts. Prompts still short of two distinct candidates are
    sampled again, at most ``attempts`` calls in all. Each candidate records its decoding, seed and backend.
    """
    from training.ml.data import is_echo_of_input, is_fragment
    from training.ml.dedupe import candidate_key

    distinct: dict[int, dict[str, tuple[str, SampledRewrite]]] = {p.pk: {} for p in prompts}
    echoes: dict[int, str] = {}
    pending = list(prompts)
    for _ in range(attempts):
        seed = secrets.randbelow(2**31)
        for prompt, rewrites in zip(pending, generator.sample_batch([p.text for p in pending], decoding, seed=seed)):
            prompt_key = candidate_key(prompt.text)
            for rewrite in rewrites:
                text = normalise_text(rewrite.text)
                key = candidate_key(text)
                if not key or is_fragment(prompt.text, text):
                    continue
                if key == prompt_key or is_echo_of_input(prompt.text, text):
                    echoes.setdefault(prompt.pk, text)
                else:
                    distinct[prompt.pk].setdefault(key, (text, rewrite))
        pending = [p for p in pending if len(distinct[p.pk]) < min(2, decoding.num_candidates)]
        if not pending:
            break
    provenance = generator.provenance(decoding)
    items = []
    for prompt in prompts:
        kept = list(distinct[prompt.pk].values())[: decoding.num_candidates]
        if not kept:
            logger.warning("no usable candidate for prompt %s from %s", prompt.pk, version)
            continue
        try:
            items.append(_store_item(prompt, version, kept, provenance, echo=echoes.get(prompt.pk, "")))
        except IntegrityError:  # a concurrent refill wrote the same candidates
            logger.info("duplicate item for prompt %s skipped", prompt.pk)
    return items


def _store_item(
    prompt: Prompt, version: ModelVersion, kept: list[tuple[str, SampledRewrite]], provenance: dict, *, echo: str = ""
) -> AnnotationItem:
    with transaction.atomic():
        item = AnnotationItem.objects.create(
            prompt=prompt,
            model_version=version,
            judgements_needed=settings.ANNOTATION_OVERLAP,
            diversity=candidate_diversity([text for text, _ in kept]),
            model_echo=echo,
        )
        Candidate.objects.bulk_create(
            Candidate(
                item=item,
                model_version=version,
                text=text,
                decoding=provenance,
                seed=rewrite.seed,
                sample_index=rewrite.index,
                generation_seconds=rewrite.seconds,
            )
            for text, rewrite in kept
        )
    return item


def claim_prompts(version: ModelVersion, count: int) -> list[Prompt]:
    """Up to ``count`` prompts that need an item and that no other generation worker is sampling now.

    Each prompt is claimed with a short Redis lock, so several workers (processes or hosts sharing
    Redis and the database) fill the pool in parallel without sampling the same prompt twice.
    """
    claimed = []
    for prompt in pick_prompts(version, count * 3):
        if queues.acquire_once(f"sampling:{version.pk}:{prompt.pk}", PROMPT_CLAIM_SECONDS):
            claimed.append(prompt)
            if len(claimed) == count:
                break
    if claimed:
        mark_picked(version, claimed[-1])  # the prompts picked but not taken come first next time
    return claimed


def refill_pool(
    version_id: int, *, target: int | None = None, generator_factory: Callable[[str], Generator] | None = None
) -> int:
    """Generate items for ``version_id`` until ``target`` are ready; stops early if it is deactivated.

    Each round samples up to ``POOL_BATCH`` prompts in one batched call (larger calls supply more items per
    second); when nothing is ready, the first call takes only ``EMPTY_POOL_BATCH`` prompts so that waiting
    annotators get items in about a second. Returns the number of items created. The generator is loaded
    once per process and reused.
    """
    from training.ml.generate import get_generator

    target = settings.POOL_TARGET if target is None else target
    factory = generator_factory or get_generator
    created = 0
    while True:
        version = ModelVersion.objects.filter(pk=version_id, is_active=True).first()
        if version is None:
            logger.info("version %s is no longer active; refill stops", version_id)
            return created
        ready = ready_count(version)
        missing = target - ready
        if missing <= 0:
            return created
        batch = settings.POOL_BATCH if ready else min(EMPTY_POOL_BATCH, settings.POOL_BATCH)
        prompts = claim_prompts(version, min(missing, batch))
        if not prompts:
            return created
        try:
            items = generate_items(
                prompts=prompts, version=version, generator=factory(str(version.path)), decoding=annotation_decoding()
            )
        finally:
            for prompt in prompts:
                queues.release(f"sampling:{version.pk}:{prompt.pk}")
        announce_items_ready(version.pk, len(items))  # wakes annotators waiting in /api/annotate/next/?wait=
        created += len(items)
