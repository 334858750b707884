"""Candidate generation for the annotation pool: sample rewrites with the active version and store
them, with their provenance, as ready annotation items.

Runs in the ``generation`` RQ worker (``training.jobs.refill_pool``), which loads the model once.
The web process only calls ``request_refill`` (torch is imported lazily, by the worker).
"""
from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction

from annotations.models import AnnotationItem, Candidate, Prompt, normalise_text
from annotations.pool import pick_prompts, ready_count
from core import queues

from .models import ModelVersion

if TYPE_CHECKING:
    from training.ml.generate import DecodingConfig, Generator

logger = logging.getLogger(__name__)
REFILL_LOCK_SECONDS = 300


def annotation_decoding() -> DecodingConfig:
    from training.ml.generate import DecodingConfig

    return DecodingConfig(
        num_candidates=settings.CANDIDATES_PER_ITEM,
        temperature=settings.SAMPLING_TEMPERATURE,
        top_p=settings.SAMPLING_TOP_P,
        max_new_tokens=settings.MAX_NEW_TOKENS,
    )


def request_refill(version: ModelVersion | None = None) -> bool:
    """Queue a refill of the active version's pool if it is below target; True if one was queued."""
    if not settings.DETOX_AUTO_REFILL:
        return False
    version = version or ModelVersion.objects.active()
    if version is None or ready_count(version) >= settings.POOL_TARGET:
        return False
    if not queues.acquire_once(f"refill:{version.pk}", REFILL_LOCK_SECONDS):
        return False
    queues.enqueue_on_commit("generation", "training.jobs.refill_pool", version.pk)
    return True


def candidate_diversity(texts: list[str]) -> float:
    """1 − mean pairwise similarity of the candidates: near 0 when the model is sure, near 1 when not."""
    from difflib import SequenceMatcher
    from itertools import combinations

    pairs = list(combinations(texts, 2))
    if not pairs:
        return 0.0
    return 1 - sum(SequenceMatcher(None, a, b).ratio() for a, b in pairs) / len(pairs)


def generate_item(
    *, prompt: Prompt, version: ModelVersion, generator: Generator, decoding: DecodingConfig, attempts: int = 3
) -> AnnotationItem | None:
    """Sample candidates for ``prompt``; identical ones collapse. Retries seeds until 2+ distinct texts."""
    distinct: dict[str, tuple[int, int, float]] = {}
    for _ in range(attempts):
        seed = random.SystemRandom().randrange(2**31)
        for rewrite in generator.sample(prompt.text, decoding, seed=seed):
            text = normalise_text(rewrite.text)
            if text and text.lower() != normalise_text(prompt.text).lower():
                distinct.setdefault(text, (rewrite.seed, rewrite.index, rewrite.seconds))
        if len(distinct) >= min(2, decoding.num_candidates):
            break
    if not distinct:
        logger.warning("no usable candidate for prompt %s from %s", prompt.pk, version)
        return None
    kept = list(distinct.items())[: decoding.num_candidates]
    with transaction.atomic():
        item = AnnotationItem.objects.create(
            prompt=prompt,
            model_version=version,
            judgements_needed=settings.ANNOTATION_OVERLAP,
            diversity=candidate_diversity([text for text, _ in kept]),
        )
        Candidate.objects.bulk_create(
            Candidate(
                item=item,
                model_version=version,
                text=text,
                decoding=decoding.as_dict(),
                seed=seed,
                sample_index=index,
                generation_seconds=seconds,
            )
            for text, (seed, index, seconds) in kept
        )
    return item


def refill_pool(
    version_id: int, *, target: int | None = None, generator_factory: Callable[[str], Generator] | None = None
) -> int:
    """Generate items for ``version_id`` until ``target`` are ready; stops early if it is deactivated.

    Returns the number of items created. The generator is loaded once per process and reused.
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
        missing = target - ready_count(version)
        if missing <= 0:
            return created
        prompts = pick_prompts(version, min(missing, settings.POOL_BATCH))
        if not prompts:
            return created
        generator = factory(str(version.path))
        for prompt in prompts:
            try:
                if generate_item(prompt=prompt, version=version, generator=generator, decoding=annotation_decoding()):
                    created += 1
            except IntegrityError:  # a concurrent refill wrote the same candidates
                logger.info("duplicate item for prompt %s skipped", prompt.pk)
