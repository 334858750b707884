"""Annotating through the API: next item, choose by id, own rewrite, skip, double submits, bad input."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotations import pool
from annotations.models import Assignment, Candidate, Judgement, PreferencePair

pytestmark = pytest.mark.django_db


def next_item(client):
    response = client.get("/api/annotate/next/")
    assert response.status_code == 200, response.content
    return response.json()


def test_next_item_shows_prompt_and_candidates_in_recorded_order(api, annotator, filled_pool):
    payload = next_item(api(annotator))
    assert payload["status"] == "ready"
    shown = payload["assignment"]
    assert shown["prompt"].startswith("you are a stupid idiot")
    assert [c["position"] for c in shown["candidates"]] == list(range(1, len(shown["candidates"]) + 1))
    assignment = Assignment.objects.get(pk=shown["id"])
    assert assignment.candidate_order == [c["id"] for c in shown["candidates"]]
    assert assignment.user == annotator


def test_identical_candidates_are_collapsed_and_keep_provenance(filled_pool):
    texts = list(Candidate.objects.filter(item__prompt__text__endswith="0").values_list("text", flat=True))
    assert sorted(texts) == ["be kind please", "kindly stop", "please be nice"]
    candidate = Candidate.objects.first()
    assert candidate.model_version == filled_pool
    assert candidate.decoding["temperature"] == 0.9
    assert candidate.seed >= 0


def test_reload_returns_the_same_open_item(api, annotator, filled_pool):
    client = api(annotator)
    assert next_item(client)["assignment"]["id"] == next_item(client)["assignment"]["id"]


def test_choosing_a_candidate_saves_judgement_and_pairs(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    pick = shown["candidates"][1]
    Assignment.objects.filter(pk=shown["id"]).update(shown_at=timezone.now() - timedelta(seconds=4))
    # The client's time is ignored: the server measures it from when the item was shown.
    response = client.post("/api/judgements/", {"assignment": shown["id"], "candidate": pick["id"], "time_spent_ms": 10}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "choice" and body["chosen_position"] == 2 and 4000 <= body["time_spent_ms"] < 60000
    pairs = PreferencePair.objects.filter(judgement_id=body["id"])
    assert pairs.count() == len(shown["candidates"]) - 1
    assert {p.chosen_text for p in pairs} == {pick["text"]}
    assert all(p.status == "pending" for p in pairs)
    after = next_item(client)
    assert after["saved_choices"] == 1
    assert after["assignment"]["id"] != shown["id"]


def test_none_acceptable_requires_own_rewrite_and_pairs_it_against_all(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    response = client.post("/api/judgements/", {"assignment": shown["id"], "own_rewrite": "  I disagree with you.  "}, format="json")
    assert response.status_code == 201
    pairs = PreferencePair.objects.filter(judgement_id=response.json()["id"])
    assert pairs.count() == len(shown["candidates"])
    assert {p.chosen_text for p in pairs} == {"I disagree with you."}
    assert all(p.is_own_rewrite for p in pairs)


def test_skip_needs_a_reason_and_makes_no_pairs(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    response = client.post("/api/judgements/", {"assignment": shown["id"], "skip_reason": "unclear"}, format="json")
    assert response.status_code == 201
    assert response.json()["kind"] == "skip"
    assert PreferencePair.objects.count() == 0
    assert next_item(client)["saved_choices"] == 0


def test_user_never_gets_the_same_item_twice(api, annotator, filled_pool):
    client = api(annotator)
    seen = []
    while True:
        payload = next_item(client)
        if payload["assignment"] is None:
            break
        shown = payload["assignment"]
        seen.append(Assignment.objects.get(pk=shown["id"]).item.prompt_id)
        client.post("/api/judgements/", {"assignment": shown["id"], "skip_reason": "other"}, format="json")
    assert len(seen) == len(set(seen)) == 8
    assert payload["status"] == "exhausted"


def test_items_go_to_users_who_have_not_judged_them(api, make_user, filled_pool):
    first, second = api(make_user("a1")), api(make_user("a2"))
    shown = next_item(first)["assignment"]
    first.post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json")
    other = next_item(second)["assignment"]
    assert Assignment.objects.get(pk=other["id"]).item_id != Assignment.objects.get(pk=shown["id"]).item_id  # overlap 1: a judged item leaves the pool


def test_double_submit_returns_the_first_result(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    first = client.post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json")
    second = client.post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][1]["id"]}, format="json")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["chosen_candidate"] == shown["candidates"][0]["id"]
    assert Judgement.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_saves_one_judgement(api, annotator, filled_pool):
    shown = next_item(api(annotator))["assignment"]
    barrier = threading.Barrier(2)
    results = []

    def submit():
        try:
            barrier.wait()
            response = api(annotator).post(
                "/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json"
            )
            results.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in results) == [200, 201]
    assert len({jid for _, jid in results}) == 1
    assert Judgement.objects.count() == 1
    assert PreferencePair.objects.count() == len(shown["candidates"]) - 1


# --- bad input: a clear 4xx with a message, and nothing changes ------------------------------------


def _nothing_saved():
    assert Judgement.objects.count() == 0 and PreferencePair.objects.count() == 0


def test_rejects_candidate_not_shown_for_this_item(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    foreign = Candidate.objects.exclude(id__in=[c["id"] for c in shown["candidates"]]).first()
    response = client.post("/api/judgements/", {"assignment": shown["id"], "candidate": foreign.id}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"Candidate {foreign.id} was not shown to you for this item."
    _nothing_saved()


def test_rejects_another_users_item(api, make_user, filled_pool):
    owner, intruder = api(make_user("owner")), api(make_user("intruder"))
    shown = next_item(owner)["assignment"]
    response = intruder.post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == f"Item assignment {shown['id']} was not shown to you."
    _nothing_saved()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"own_rewrite": "   "}, "Give exactly one of: a candidate id, your own rewrite, or a skip reason."),
        ({}, "Give exactly one of: a candidate id, your own rewrite, or a skip reason."),
    ],
)
def test_rejects_missing_rewrite(api, annotator, filled_pool, fields, message):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    response = client.post("/api/judgements/", {"assignment": shown["id"], **fields}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == message
    _nothing_saved()


def test_rejects_oversized_rewrite(api, annotator, filled_pool, settings):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    response = client.post("/api/judgements/", {"assignment": shown["id"], "own_rewrite": "x" * 1001}, format="json")
    assert response.status_code == 400
    assert "own_rewrite" in response.json()
    _nothing_saved()


def test_rejects_unknown_skip_reason(api, annotator, filled_pool):
    client = api(annotator)
    shown = next_item(client)["assignment"]
    response = client.post("/api/judgements/", {"assignment": shown["id"], "skip_reason": "bored"}, format="json")
    assert response.status_code == 400
    assert "skip_reason" in response.json()
    _nothing_saved()


def test_unauthenticated_requests_are_refused(api, filled_pool):
    client = api()
    assert client.get("/api/annotate/next/").status_code in (401, 403)
    response = client.post("/api/judgements/", {"assignment": 1, "candidate": 1}, format="json")
    assert response.status_code in (401, 403)
    assert "credentials" in response.json()["detail"]
    _nothing_saved()


def test_annotator_sees_only_own_judgements(api, make_user, filled_pool):
    alice, bob = make_user("alice"), make_user("bob")
    for user in (alice, bob):
        client = api(user)
        shown = next_item(client)["assignment"]
        client.post("/api/judgements/", {"assignment": shown["id"], "skip_reason": "other"}, format="json")
    listed = api(alice).get("/api/judgements/").json()
    assert listed["count"] == 1 and listed["results"][0]["user"] == "alice"


def test_no_active_version_says_so(api, annotator, prompts):
    response = api(annotator).get("/api/annotate/next/")
    assert response.status_code == 409
    assert response.json()["detail"] == "No model version is active yet: staff must register and activate one."


def test_an_item_with_all_its_judgements_is_marked_complete_and_leaves_the_pool(filled_pool, make_user, api):
    """is_complete lets serving skip finished items; a skip does not complete an item."""
    from annotations.models import AnnotationItem

    ready = pool.ready_count(filled_pool)
    skipper, chooser = make_user("skipper"), make_user("chooser")
    shown = api(skipper).get("/api/annotate/next/").json()["assignment"]
    api(skipper).post("/api/judgements/", {"assignment": shown["id"], "skip_reason": "unclear"}, format="json")
    assert not AnnotationItem.objects.get(assignments__id=shown["id"]).is_complete
    shown = api(chooser).get("/api/annotate/next/").json()["assignment"]
    api(chooser).post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json")
    assert AnnotationItem.objects.get(assignments__id=shown["id"]).is_complete
    assert pool.ready_count(filled_pool) == ready - 1


def test_pool_ready_is_counted_about_once_a_second_and_is_right_after_a_refill(
    api, annotator, tiny_version, prompts, stub_generator, monkeypatch
):
    """Every next-item answer shows pool_ready; the count behind it is shared for READY_COUNT_SECONDS,
    and a refill that stores items drops it, so the next answer counts them (not the empty pool)."""
    from django.test.utils import CaptureQueriesContext

    from training.generation import refill_pool

    def pool_counts(queries) -> int:
        return sum(q["sql"].startswith('SELECT COUNT(*) FROM (SELECT "annotations_annotationitem"') for q in queries)

    monkeypatch.setattr(pool, "READY_COUNT_SECONDS", 60)  # no expiry during the test: only a refill refreshes it
    client = api(annotator)
    with CaptureQueriesContext(connection) as first:
        assert next_item(client)["pool_ready"] == 0
    with CaptureQueriesContext(connection) as second:
        assert next_item(client)["pool_ready"] == 0
    assert (pool_counts(first), pool_counts(second)) == (1, 0)  # the second answer reused the first one's count
    refill_pool(tiny_version.pk, target=4, generator_factory=lambda path: stub_generator)
    payload = next_item(client)
    assert payload["status"] == "ready"
    assert payload["pool_ready"] == pool.ready_count(tiny_version) == 3  # 4 stored, 1 now reserved for this annotator


def test_raising_judgements_needed_in_the_admin_reopens_a_finished_item(filled_pool, make_user, api):
    """Staff who ask for one more judgement on a finished item get it served again."""
    from types import SimpleNamespace

    from django.contrib.admin.sites import site

    from annotations.models import AnnotationItem

    chooser = make_user("chooser")
    shown = api(chooser).get("/api/annotate/next/").json()["assignment"]
    api(chooser).post("/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, format="json")
    item = AnnotationItem.objects.get(assignments__id=shown["id"])
    assert item.is_complete
    item.judgements_needed += 1
    site._registry[AnnotationItem].save_model(None, item, SimpleNamespace(changed_data=["judgements_needed"]), True)
    item.refresh_from_db()
    assert not item.is_complete
    assert api(make_user("second")).get("/api/annotate/next/").status_code == 200
