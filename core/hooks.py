"""Follow-up actions across floors: a lower app announces what happened, a higher app says what to do.

Annotations asks for more candidates when its pool runs low (training generates them); training
announces a registered version (evaluation evaluates it) and asks whether a promotion is allowed
(evaluation's gate answers with a problem, which needs an override, and a warning) and which toxicity
judge SFT cleaning should use (evaluation's STA judge). Handlers are registered in the higher app's
``AppConfig.ready()``, so imports keep pointing down.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

POOL_LOW = "pool_low"  # kwargs: version — the active version's ready pool may need a refill
VERSION_REGISTERED = "version_registered"  # kwargs: version_id — a new checkpoint is in the store
PROMPTS_IMPORTED = "prompts_imported"  # no kwargs — answers: lists of job rows queued (evaluations, the first SFT run)
RETENTION_KEEP = "retention_keep"  # no kwargs — answers: {version id: why its weights must stay}
PROMOTION_CHECK = "promotion_check"  # kwargs: candidate, active — an object with .problem and .warning, or None
TOXICITY_JUDGE = "toxicity_judge"  # no kwargs — answers: the classifier spec STA is scored with (a name or a path)

_handlers: dict[str, list[Callable[..., Any]]] = defaultdict(list)


def register(event: str, handler: Callable[..., Any]) -> None:
    """Call ``handler(**kwargs)`` whenever ``event`` is announced (registering twice is a no-op)."""
    if handler not in _handlers[event]:
        _handlers[event].append(handler)


def announce(event: str, **kwargs: Any) -> list[Any]:
    """Run every handler of ``event`` in registration order and return their results."""
    return [handler(**kwargs) for handler in list(_handlers[event])]


def first_answer(event: str, **kwargs: Any) -> Any:
    """The first non-None result of ``event``'s handlers (e.g. the first reason to refuse), else None."""
    return next((answer for answer in announce(event, **kwargs) if answer is not None), None)
