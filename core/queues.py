"""The one place that talks to Redis queues: enqueue after commit, and say clearly when Redis is down."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


class RedisUnavailable(RuntimeError):
    def __init__(self, exc: Exception | None = None) -> None:
        super().__init__(
            f"Cannot reach Redis at {settings.REDIS_URL} ({exc}). Start it (`redis-server --daemonize yes`) "
            "or point REDIS_URL at a running Redis."
        )


_clients: dict[str, Any] = {}


def get_connection():
    """The Redis client for the ``generation`` queue's settings, one per process and settings.

    django_rq builds a new client, with a new connection pool, on every call: every lock, signal
    and long-poll then opened a TCP connection of its own. This one is reused (thread-safe; its pool
    reconnects after a fork).
    """
    from django_rq.connection_utils import filter_connection_params
    from django_rq.settings import QUEUES

    key = repr(sorted(filter_connection_params(QUEUES["generation"]).items()))
    client = _clients.get(key)
    if client is None:
        client = _clients.setdefault(key, django_rq.get_connection("generation"))
    return client


BLOCKING_SOCKET_TIMEOUT = 60  # seconds; above any wait_for_signal timeout (long polls are capped at 25 s)


def get_blocking_connection():
    """A client of its own for blocking reads (BLPOP). An RQ worker in the same process lowers the
    socket timeout of the client it is given (``Worker._set_connection``), which would cut a long
    wait short with "Timeout reading from socket"; this one keeps a timeout above any wait."""
    from redis import ConnectionPool, Redis

    shared = get_connection().connection_pool
    key = "blocking:" + repr(sorted((k, str(v)) for k, v in shared.connection_kwargs.items() if k != "socket_timeout"))
    client = _clients.get(key)
    if client is None:
        kwargs = {**shared.connection_kwargs, "socket_timeout": BLOCKING_SOCKET_TIMEOUT}
        pool = ConnectionPool(connection_class=shared.connection_class, **kwargs)
        client = _clients.setdefault(key, Redis(connection_pool=pool))
    return client


def check_redis() -> None:
    """Raise ``RedisUnavailable`` with a how-to-fix message when Redis does not answer."""
    try:
        get_connection().ping()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise RedisUnavailable(exc) from exc


def enqueue(queue: str, func: Callable[..., Any] | str, *args: Any, **kwargs: Any):
    """Enqueue now; raise ``RedisUnavailable`` if Redis is down. Pass ids, never model instances."""
    try:
        return django_rq.get_queue(queue).enqueue(func, *args, **kwargs)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise RedisUnavailable(exc) from exc


def enqueue_on_commit(
    queue: str,
    func: Callable[..., Any] | str,
    *args: Any,
    on_failure: Callable[[RedisUnavailable], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Enqueue once the current transaction commits, so the job never sees uncommitted rows.

    If Redis is down then, the error is logged and ``on_failure(exc)`` runs (a job row records it).
    """

    def _send() -> None:
        try:
            enqueue(queue, func, *args, **kwargs)
        except RedisUnavailable as exc:
            logger.error("%s", exc)
            if on_failure is not None:
                on_failure(exc)

    transaction.on_commit(_send)


def acquire_once(key: str, seconds: int) -> bool:
    """A short Redis lock so the same refill is not queued many times; False if already held or Redis is down."""
    try:
        return bool(get_connection().set(f"detox:{key}", "1", nx=True, ex=seconds))
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.error("%s", RedisUnavailable(exc))
        return False


def release(key: str) -> None:
    """Let go of a lock from ``acquire_once`` (or drop what ``remember`` kept); Redis down: ignored."""
    try:
        get_connection().delete(f"detox:{key}")
    except (RedisConnectionError, RedisTimeoutError, OSError):
        pass


def remember(key: str, value: int, seconds: float) -> None:
    """Keep a number for ``seconds`` that many requests would otherwise each compute (a count shared
    by every web process); Redis down: ignored, so readers compute it themselves."""
    try:
        get_connection().set(f"detox:{key}", value, px=max(1, int(seconds * 1000)))
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.error("%s", RedisUnavailable(exc))


def recall(key: str) -> int | None:
    """The number ``remember`` kept under ``key``, or None once it expired (or Redis is down)."""
    try:
        value = get_connection().get(f"detox:{key}")
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.error("%s", RedisUnavailable(exc))
        return None
    return None if value is None else int(value)


def signal(key: str, count: int, *, ttl_seconds: int = 60, cap: int = 256) -> None:
    """Wake up to ``count`` requests blocked in ``wait_for_signal(key)`` (one Redis list token each).

    Tokens nobody takes expire after ``ttl_seconds`` and never exceed ``cap``, so a signal sent
    while no one waits costs a waiter at most one extra look at the pool later. Redis down: ignored
    (waiters fall back to their timeout).
    """
    if count <= 0:
        return
    name = f"detox:{key}"
    try:
        with get_connection().pipeline() as pipe:
            pipe.rpush(name, *["1"] * min(count, cap)).ltrim(name, -cap, -1).expire(name, ttl_seconds).execute()
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.error("%s", RedisUnavailable(exc))


def wait_for_signal(key: str, timeout: float) -> bool:
    """Block up to ``timeout`` seconds for one token of ``signal(key)``; True if one arrived.

    Holds one Redis connection while it waits. With Redis down it sleeps the timeout instead, so a
    caller's retry loop never spins.
    """
    if timeout <= 0:
        return False
    try:
        return get_blocking_connection().blpop([f"detox:{key}"], timeout=timeout) is not None
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        logger.error("%s", RedisUnavailable(exc))
        time.sleep(timeout)
        return False
