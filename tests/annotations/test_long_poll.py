"""GET /api/annotate/next/?wait=N: a waiting annotator gets an item as soon as a refill stores one."""
from __future__ import annotations

import threading

import pytest

from core.queues import get_connection
from tests.conftest import waiting_request
from training.generation import refill_pool


def test_a_waiting_request_returns_as_soon_as_a_refill_stores_items(
    transactional_db, settings, tiny_version, prompts, annotator, api, stub_generator
):
    # No periodic re-check within the wait: only the refill's Redis signal can end it with an item.
    settings.NEXT_ITEM_RECHECK_SECONDS = 60
    answer = waiting_request(api(annotator), "/api/annotate/next/?wait=20")
    refill_pool(tiny_version.pk, target=2, generator_factory=lambda path: stub_generator)
    response, _ = answer()
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready" and body["assignment"]["candidates"]


def test_a_bounded_wait_on_an_empty_pool_returns_the_usual_empty_answer(db, tiny_version, prompts, annotator, api):
    response = api(annotator).get("/api/annotate/next/?wait=1")
    assert response.status_code == 200
    assert response.json()["status"] == "generating" and response.json()["assignment"] is None


def test_without_wait_the_answer_comes_at_once_as_before(db, filled_pool, annotator, api):
    assert api(annotator).get("/api/annotate/next/").json()["status"] == "ready"


def test_waiting_slots_full_answers_at_once(db, settings, tiny_version, prompts, annotator, api):
    settings.NEXT_ITEM_MAX_WAITERS = 0  # no thread may wait: the request must not block 25 s
    response = api(annotator).get("/api/annotate/next/?wait=25")
    assert response.json()["status"] == "generating"


@pytest.mark.parametrize(
    "wait, message",
    [
        ("26", "Ensure this value is less than or equal to 25."),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("soon", "A valid integer is required."),
    ],
)
def test_a_bad_wait_is_refused_with_a_message(db, tiny_version, annotator, api, wait, message):
    response = api(annotator).get(f"/api/annotate/next/?wait={wait}")
    assert response.status_code == 400 and response.json() == {"wait": [message]}


def test_an_rq_worker_in_the_same_process_does_not_cut_a_wait_short(db, caplog):
    """An RQ worker lowers the shared client's socket timeout; the long poll's own client keeps waiting."""
    from rq import SimpleWorker

    from core import queues

    shared = get_connection()
    before = shared.connection_pool.connection_kwargs.get("socket_timeout")
    try:
        worker = SimpleWorker(["generation"], connection=shared)
        worker.connection.connection_pool.connection_kwargs["socket_timeout"] = 0.2  # as a short worker timeout would
        shared.connection_pool.reset()  # new connections take the lowered timeout
        timer = threading.Timer(0.6, queues.signal, args=("long-poll-test", 1))
        timer.start()
        assert queues.wait_for_signal("long-poll-test", 2) is True
        assert "Cannot reach Redis" not in caplog.text
    finally:
        shared.connection_pool.connection_kwargs["socket_timeout"] = before
        shared.connection_pool.reset()
