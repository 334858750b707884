"""manage.py backup writes one file that restores users and all annotations into an empty database."""
from __future__ import annotations

import gzip
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from annotations import services as annotation_services
from annotations.models import Candidate, Judgement, PreferencePair, Prompt, ReviewEvent
from annotations.review import approve_pairs, reject_pairs
from training.models import ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot() -> dict[str, set]:
    """What a restore must bring back, compared by value (users by name, rows by id)."""
    users = get_user_model().objects.prefetch_related("groups")
    return {
        "users": {(u.username, u.password, u.is_staff, tuple(sorted(g.name for g in u.groups.all()))) for u in users},
        "tokens": set(Token.objects.values_list("key", "user__username")),
        "versions": set(ModelVersion.objects.values_list("id", "name", "is_active", "parent_id")),
        "prompts": set(Prompt.objects.values_list("id", "text", "is_heldout")),
        "candidates": set(Candidate.objects.values_list("id", "item_id", "text", "model_version__name")),
        "judgements": set(
            Judgement.objects.values_list("id", "user__username", "kind", "chosen_candidate_id", "own_rewrite", "skip_reason")
        ),
        "pairs": set(
            PreferencePair.objects.values_list("id", "status", "chosen_text", "rejected_text", "reviewed_by__username")
        ),
        "review_events": set(ReviewEvent.objects.values_list("id", "pair_id", "user__username")),
    }


@pytest.fixture
def annotated(annotator, reviewer, filled_pool, make_user):
    for _ in range(3):
        shown = annotation_services.next_assignment(user=annotator)
        annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, own_rewrite="please do not say that")
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, skip_reason="unclear")
    pairs = list(PreferencePair.objects.order_by("id"))
    approve_pairs(reviewer=reviewer, pairs=pairs[:3])
    reject_pairs(reviewer=reviewer, pairs=pairs[3:4])
    Token.objects.create(user=annotator)
    make_user("boss", "admin")


def test_backup_restores_into_an_empty_database(annotated, tmp_path):
    before = snapshot()
    assert before["judgements"] and before["pairs"] and len(before["users"]) == 3
    assert {status for _, status, *_ in before["pairs"]} >= {"approved", "rejected", "pending"}
    output = tmp_path / "backup.json.gz"

    call_command("backup", str(output))

    rows = json.loads(gzip.decompress(output.read_bytes()))
    assert {row["model"] for row in rows} >= {"auth.user", "annotations.judgement", "annotations.preferencepair"}
    assert not any(row["model"] in {"sessions.session", "contenttypes.contenttype", "auth.permission"} for row in rows)

    call_command("flush", interactive=False, verbosity=0)  # an empty database, as after a fresh migrate
    assert not get_user_model().objects.exists() and not Prompt.objects.exists() and not Judgement.objects.exists()

    call_command("loaddata", str(output), verbosity=0)

    assert snapshot() == before
    restored = get_user_model().objects.get(username="ann")
    assert restored.check_password("pw-for-tests-1")
    # Sequences were reset: new rows do not collide with restored ids.
    assert Prompt.objects.create(text="a brand new rude sentence").pk > max(p[0] for p in before["prompts"])


def test_backup_refuses_to_overwrite_or_guess_the_format(db, tmp_path):
    existing = tmp_path / "old.json.gz"
    existing.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists; choose a new file name"):
        call_command("backup", str(existing))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(CommandError, match="must end with one of .json"):
        call_command("backup", str(tmp_path / "backup.tar"))
