"""Reviewing preference pairs: API role matrix, each action, bulk, history, the review page, admin."""
from __future__ import annotations

import pytest
from django.test import Client

from annotations import services
from annotations.models import PreferencePair, ReviewEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def pairs(annotator, filled_pool):
    """Two judgements by ``annotator``: one choice (2 pairs) and one own rewrite (3 pairs)."""
    first = services.next_assignment(user=annotator)
    services.submit_judgement(user=annotator, assignment_id=first.pk, candidate_id=first.candidate_order[0])
    second = services.next_assignment(user=annotator)
    services.submit_judgement(user=annotator, assignment_id=second.pk, own_rewrite="please stop that")
    return list(PreferencePair.objects.order_by("id"))


def test_denies_annotator_to_list_or_approve_pairs(api, annotator, pairs):
    client = api(annotator)
    assert client.get("/api/pairs/").status_code == 403
    response = client.post(f"/api/pairs/{pairs[0].id}/approve/")
    assert response.status_code == 403 and response.json()["detail"] == "Only reviewers can do this."
    assert PreferencePair.objects.approved().count() == 0


def test_reviewer_lists_and_filters_pairs(api, reviewer, pairs):
    client = api(reviewer)
    body = client.get("/api/pairs/").json()
    assert body["count"] == 5
    assert client.get("/api/pairs/?annotator=ann").json()["count"] == 5
    assert client.get("/api/pairs/?annotator=nobody").json()["count"] == 0
    assert client.get("/api/pairs/?model_version=tiny&status=pending").json()["count"] == 5
    assert client.get("/api/pairs/?is_own_rewrite=true").json()["count"] == 3
    assert client.get("/api/pairs/?search=please%20stop").json()["count"] == 3


def test_approve_reject_flag_are_recorded_with_who_and_when(api, reviewer, pairs):
    client = api(reviewer)
    approved = client.post(f"/api/pairs/{pairs[0].id}/approve/").json()
    assert approved["status"] == "approved" and approved["reviewed_by"] == "rev" and approved["reviewed_at"]
    assert approved["events"][0]["action"] == "approve" and approved["events"][0]["user"] == "rev"
    assert client.post(f"/api/pairs/{pairs[1].id}/reject/").json()["status"] == "rejected"
    flagged = client.post(f"/api/pairs/{pairs[2].id}/flag/", {"note": "check meaning"}, format="json").json()
    assert flagged["flagged"] and flagged["flag_note"] == "check meaning"
    assert list(PreferencePair.objects.approved().values_list("id", flat=True)) == [pairs[0].id]
    assert client.get("/api/pairs/?flagged=true").json()["count"] == 1


def test_swap_exchanges_chosen_and_rejected(api, reviewer, pairs):
    pair = pairs[0]
    swapped = api(reviewer).post(f"/api/pairs/{pair.id}/swap/").json()
    assert (swapped["chosen_text"], swapped["rejected_text"]) == (pair.rejected_text, pair.chosen_text)
    assert (swapped["chosen_candidate"], swapped["rejected_candidate"]) == (pair.rejected_candidate_id, pair.chosen_candidate_id)
    assert swapped["original_chosen_text"] == pair.chosen_text


def test_edit_gold_rewrite_keeps_the_original(api, reviewer, pairs):
    pair = pairs[3]
    edited = api(reviewer).post(f"/api/pairs/{pair.id}/edit/", {"chosen_text": "Please stop doing that."}, format="json").json()
    assert edited["chosen_text"] == "Please stop doing that."
    assert edited["original_chosen_text"] == "please stop that"
    event = ReviewEvent.objects.get(pair=pair)
    assert event.before == {"chosen_text": "please stop that"} and event.after == {"chosen_text": "Please stop doing that."}


def test_edit_gold_rewrite_refuses_empty_text(api, reviewer, pairs):
    response = api(reviewer).post(f"/api/pairs/{pairs[3].id}/edit/", {"chosen_text": "   "}, format="json")
    assert response.status_code == 400
    assert PreferencePair.objects.get(pk=pairs[3].pk).chosen_text == "please stop that"


def test_bulk_action_and_unknown_ids(api, reviewer, pairs):
    client = api(reviewer)
    ids = [p.id for p in pairs[:3]]
    assert client.post("/api/pairs/bulk/", {"ids": ids, "action": "approve"}, format="json").json() == {"action": "approve", "updated": 3}
    assert PreferencePair.objects.approved().count() == 3
    response = client.post("/api/pairs/bulk/", {"ids": [pairs[3].id, 999999], "action": "reject"}, format="json")
    assert response.status_code == 404 and response.json()["detail"] == "No such pairs: [999999]"
    assert PreferencePair.objects.filter(status="rejected").count() == 0
    response = client.post("/api/pairs/bulk/", {"ids": ids, "action": "delete"}, format="json")
    assert response.status_code == 400


def test_review_page_filters_and_bulk_approves(reviewer, pairs):
    client = Client()
    client.force_login(reviewer)
    page = client.get("/review/?status=pending&annotator=ann").content.decode()
    assert "please stop that" in page and "5 pair(s)" in page
    response = client.post("/review/bulk/", {"ids": [pairs[0].id, pairs[1].id], "action": "approve", "next": "/review/"}, follow=True)
    assert "approve: 2 pair(s) updated." in response.content.decode()
    assert PreferencePair.objects.approved().count() == 2
    assert "0 pair(s)" in client.get("/review/?status=rejected").content.decode()


def test_pair_page_edits_gold_and_shows_history(reviewer, pairs):
    client = Client()
    client.force_login(reviewer)
    response = client.post(f"/review/{pairs[3].id}/", {"chosen_text": "Kindly stop."}, follow=True)
    html = response.content.decode()
    assert "Gold rewrite saved." in html and "Original by the annotator: please stop that" in html and "edit" in html


def test_admin_bulk_action_approves(staff, pairs):
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/annotations/preferencepair/",
        {"action": "approve_pairs", "_selected_action": [p.id for p in pairs]},
        follow=True,
    )
    assert response.status_code == 200
    assert PreferencePair.objects.approved().count() == 5
    assert ReviewEvent.objects.filter(user=staff, action="approve").count() == 5
    assert client.get(f"/admin/annotations/preferencepair/{pairs[0].id}/change/").status_code == 200


def test_admin_flag_note_edit_is_recorded_as_a_review_event(staff, pairs):
    client = Client()
    client.force_login(staff)
    inline = {"events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0", "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "0"}
    response = client.post(f"/admin/annotations/preferencepair/{pairs[0].id}/change/", {"flag_note": "check meaning", **inline})
    assert response.status_code == 302
    pairs[0].refresh_from_db()
    assert pairs[0].flagged and pairs[0].flag_note == "check meaning"
    event = ReviewEvent.objects.get(pair=pairs[0], action="flag")
    assert event.user == staff and event.after["flag_note"] == "check meaning"
