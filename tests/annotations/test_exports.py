"""Exports: round trips through JSONL and ``datasets``, the manifest, the card, command, API and admin."""
from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from annotations import exports, review, services
from annotations.models import Candidate, Judgement, PreferencePair

pytestmark = pytest.mark.django_db


@pytest.fixture
def annotated(annotator, reviewer, make_user, filled_pool):
    """Two annotators' work, reviewed: 5 approved pairs (one swapped, one gold edited), 1 rejected, 2 pending.

    ``ann`` chose a candidate (2 pairs), wrote their own rewrite (3 pairs) and skipped an item;
    ``ann2`` found none acceptable and wrote a non-ASCII rewrite (3 pairs).
    """
    other = make_user("ann2")
    first = services.next_assignment(user=annotator)
    services.submit_judgement(user=annotator, assignment_id=first.pk, candidate_id=first.candidate_order[1], time_spent_ms=1500)
    second = services.next_assignment(user=annotator)
    services.submit_judgement(user=annotator, assignment_id=second.pk, own_rewrite="please stop that")
    third = services.next_assignment(user=annotator)
    services.submit_judgement(user=annotator, assignment_id=third.pk, skip_reason="unclear")
    fourth = services.next_assignment(user=other)
    services.submit_judgement(user=other, assignment_id=fourth.pk, own_rewrite="Stop, please — ça suffit")

    mine = list(PreferencePair.objects.filter(judgement__user=annotator).order_by("id"))
    theirs = list(PreferencePair.objects.filter(judgement__user=other).order_by("id"))
    review.approve_pairs(reviewer=reviewer, pairs=mine)
    review.swap_pair(reviewer=reviewer, pair=mine[0])
    review.edit_gold_rewrite(reviewer=reviewer, pair=mine[4], text="Please stop doing that.")
    review.reject_pairs(reviewer=reviewer, pairs=theirs[:1])
    return {"assignments": [first, second, third, fourth], "mine": mine, "theirs": theirs}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def db_value(obj, field, column: str):
    """The value a model field should have in its export column: ids, usernames, ISO times."""
    value = getattr(obj, field.attname)
    if field.is_relation and field.related_model is get_user_model() and not column.endswith("_id"):
        value = getattr(obj, field.name).get_username() if value is not None else None
    return value.isoformat() if isinstance(value, datetime) else value


def test_preferences_round_trip_through_jsonl_and_datasets(annotated, tmp_path):
    from datasets import load_from_disk

    result = exports.export_dataset(tmp_path / "out")
    out = result.directory
    rows = read_jsonl(out / "preferences.jsonl")
    approved = PreferencePair.objects.approved().select_related("prompt", "model_version", "judgement__user").order_by("id")
    assert [r["pair_id"] for r in rows] == [p.id for p in approved] and len(rows) == 5

    # Every model field of a pair is exported, with its value; nothing else is silently added.
    model_fields = {f.name: f for f in PreferencePair._meta.concrete_fields}
    assert set(exports.PAIR_FIELD_COLUMNS) == set(model_fields)
    for pair, row in zip(approved, rows):
        assert list(row) == list(exports.PREFERENCE_COLUMNS)
        for name, column in exports.PAIR_FIELD_COLUMNS.items():
            assert row[column] == db_value(pair, model_fields[name], column), (pair.id, name)
        assert (row["prompt"], row["prompt_source"]) == (pair.prompt.text, pair.prompt.source)
        assert (row["annotator"], row["model_version"]) == (pair.judgement.user.username, "tiny")

    swapped = next(r for r in rows if r["pair_id"] == annotated["mine"][0].id)
    assert swapped["chosen_candidate_id"] == annotated["mine"][0].rejected_candidate_id
    assert swapped["original_chosen_text"] != swapped["chosen"]
    edited = next(r for r in rows if r["pair_id"] == annotated["mine"][4].id)
    assert (edited["chosen"], edited["original_chosen_text"]) == ("Please stop doing that.", "please stop that")
    assert edited["is_own_rewrite"] and edited["chosen_candidate_id"] is None and edited["reviewed_by"] == "rev"

    dataset = load_from_disk(str(out / "preferences_hf"))
    assert dataset.column_names == list(exports.PREFERENCE_COLUMNS)
    assert dataset.to_list() == rows
    assert result.counts == {"preferences.jsonl": 5, "preferences_hf": 5, "sft.jsonl": 2, "judgements.jsonl": 4}


def test_manifest_lists_exactly_the_fields_present(annotated, tmp_path):
    out = exports.export_dataset(tmp_path / "out").directory
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["judgements.jsonl", "preferences.jsonl", "preferences_hf", "sft.jsonl"]
    for name in ("preferences.jsonl", "sft.jsonl", "judgements.jsonl"):
        info, rows = manifest["files"][name], read_jsonl(out / name)
        assert info["rows"] == len(rows) > 0
        assert all(list(row) == info["fields"] for row in rows), name
    shown = [c for row in read_jsonl(out / "judgements.jsonl") for c in row["shown_candidates"]]
    assert shown and all(list(c) == manifest["files"]["judgements.jsonl"]["shown_candidates_fields"] for c in shown)
    assert manifest["files"]["preferences_hf"]["fields"] == manifest["files"]["preferences.jsonl"]["fields"]
    assert manifest["filters"] == {"parts": list(exports.PARTS), "status": "approved", "since": None, "include_references": False}


def test_judgements_keep_skips_own_rewrites_and_candidates_as_shown(annotated, tmp_path):
    out = exports.export_dataset(tmp_path / "out", what=["judgements"]).directory
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "judgements.jsonl", "manifest.json"]
    rows = {r["judgement_id"]: r for r in read_jsonl(out / "judgements.jsonl")}
    assert set(rows) == set(Judgement.objects.values_list("id", flat=True))

    model_fields = {f.name: f for f in Judgement._meta.concrete_fields}
    assert set(exports.JUDGEMENT_FIELD_COLUMNS) == set(model_fields)
    for judgement in Judgement.objects.select_related("assignment"):
        row = rows[judgement.id]
        for name, column in exports.JUDGEMENT_FIELD_COLUMNS.items():
            assert row[column] == db_value(judgement, model_fields[name], column), (judgement.id, name)
        order = judgement.assignment.candidate_order
        assert row["shown_candidate_ids"] == order and row["shown_at"] == judgement.assignment.shown_at.isoformat()
        for position, (shown, candidate_id) in enumerate(zip(row["shown_candidates"], order, strict=True), start=1):
            candidate = Candidate.objects.get(id=candidate_id)
            assert shown == {
                "candidate_id": candidate.id,
                "position": position,
                "text": candidate.text,
                "model_version": "tiny",
                "decoding": candidate.decoding,
                "seed": candidate.seed,
                "sample_index": candidate.sample_index,
                "generation_seconds": candidate.generation_seconds,
                "created_at": candidate.created_at.isoformat(),
            }
        assert isinstance(row["shown_candidates"][0]["decoding"], dict) and row["shown_candidates"][0]["decoding"]

    by_kind = {r["kind"]: r for r in rows.values() if r["annotator"] == "ann"}
    assert by_kind["skip"]["skip_reason"] == "unclear" and by_kind["skip"]["pair_ids"] == []
    assert by_kind["skip"]["chosen_candidate_id"] is None and len(by_kind["skip"]["shown_candidates"]) == 3
    assert by_kind["none"]["own_rewrite"] == "please stop that" and len(by_kind["none"]["pair_ids"]) == 3
    choice = by_kind["choice"]
    assert choice["chosen_position"] == 2 and choice["chosen_text"] == choice["shown_candidates"][1]["text"]
    assert choice["time_spent_ms"] == 1500
    theirs = next(r for r in rows.values() if r["annotator"] == "ann2")
    assert theirs["own_rewrite"] == "Stop, please — ça suffit"
    assert "ça suffit" in (out / "judgements.jsonl").read_text(encoding="utf-8")  # UTF-8, not \u escapes


def test_sft_rows_are_gold_rewrites_merged_per_prompt_and_text(annotated, tmp_path):
    out = exports.export_dataset(tmp_path / "out", what=["sft"]).directory
    rows = read_jsonl(out / "sft.jsonl")
    own = annotated["mine"][2:]
    assert [(r["completion"], r["pair_ids"]) for r in rows] == [
        ("please stop that", [own[0].id, own[1].id]),
        ("Please stop doing that.", [own[2].id]),
    ]
    assert all(r["prompt"] == own[0].prompt.text and not r["is_reference"] for r in rows)
    assert rows[1]["original_chosen_texts"] == ["please stop that"] and rows[1]["annotators"] == ["ann"]
    assert rows[1]["reviewed_by"] == ["rev"] and rows[1]["reviewed_at"]

    with_refs = exports.sft_records(include_references=True)
    references = [r for r in with_refs if r["is_reference"]]
    assert len(with_refs) == 2 + len(references) and len(references) == 8
    assert references[0]["completion"] == "you are wrong 0" and references[0]["pair_ids"] == []


def test_dataset_card_has_counts_licence_and_prompt_note(annotated, tmp_path):
    card = (exports.export_dataset(tmp_path / "out").directory / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n") and "configs:\n- config_name: preferences\n" in card
    assert "| `preferences.jsonl` | 5 |" in card and "| `judgements.jsonl` | 4 |" in card and "| `sft.jsonl` | 2 |" in card
    assert "### preferences by status\n\n- approved: 5" in card
    assert "### preferences by annotator\n\n- ann: 5" in card and "### judgements by annotator\n\n- ann: 3\n- ann2: 1" in card
    assert "### preferences by model version\n\n- tiny: 5" in card and "- skip: 1" in card
    assert "CC0 1.0" in card and "ParaDetox" in card and "belong to its operator" in card
    assert "raw toxic sentence" in card


def test_command_exports_all_statuses_and_prints_counts(annotated, tmp_path):
    stdout = io.StringIO()
    call_command("export", str(tmp_path / "all"), "--what", "preferences", "--status", "all", stdout=stdout)
    assert "preferences.jsonl: 8 row(s)" in stdout.getvalue() and "Exported to" in stdout.getvalue()
    rows = read_jsonl(tmp_path / "all" / "preferences.jsonl")
    assert sorted(r["status"] for r in rows) == ["approved"] * 5 + ["pending"] * 2 + ["rejected"]
    assert not (tmp_path / "all" / "sft.jsonl").exists()


def test_command_since_in_the_future_exports_empty_typed_files(annotated, tmp_path):
    from datasets import load_from_disk

    call_command("export", str(tmp_path / "none"), "--since", "2999-01-01", stdout=io.StringIO())
    assert (tmp_path / "none" / "preferences.jsonl").read_text() == ""
    empty = load_from_disk(str(tmp_path / "none" / "preferences_hf"))
    assert len(empty) == 0 and empty.column_names == list(exports.PREFERENCE_COLUMNS)
    assert str(empty.features["reviewed_at"].dtype) == "string"
    assert json.loads((tmp_path / "none" / "manifest.json").read_text())["filters"]["since"].startswith("2999-01-01T00:00:00")


def test_command_refuses_existing_non_empty_directory(annotated, tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(CommandError, match=r"already exists and is not empty; nothing was written"):
        call_command("export", str(target), stdout=io.StringIO())
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging directory left behind

    empty = tmp_path / "empty"
    empty.mkdir()
    call_command("export", str(empty), "--what", "judgements", stdout=io.StringIO())
    assert (empty / "judgements.jsonl").exists()


def test_failed_export_leaves_no_half_written_directory(annotated, tmp_path, monkeypatch):
    def disk_full(path, records):
        raise OSError("No space left on device")

    monkeypatch.setattr(exports, "_save_hf_dataset", disk_full)
    with pytest.raises(CommandError, match="No space left on device"):
        call_command("export", str(tmp_path / "out"), stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--what", "preferences,pictures"], "Unknown export part(s) ['pictures']"),
        (["--since", "last tuesday"], "--since must be an ISO date or datetime"),
        (["--status", "pending"], "invalid choice: 'pending'"),
    ],
)
def test_command_rejects_bad_options(db, tmp_path, args, message):
    with pytest.raises(CommandError) as refused:
        call_command("export", str(tmp_path / "out"), *args, stdout=io.StringIO())
    assert message in str(refused.value)
    assert not (tmp_path / "out").exists()


def _lines(response) -> list[dict]:
    assert response.streaming
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_export_api_is_for_reviewers_only(api, annotator, annotated):
    for path in ("/api/exports/preferences.jsonl", "/api/exports/sft.jsonl", "/api/exports/judgements.jsonl"):
        assert api().get(path).status_code in (401, 403)
        denied = api(annotator).get(path)
        assert denied.status_code == 403 and denied.json()["detail"] == "Only reviewers can do this."


def test_export_api_streams_jsonl_with_pair_list_filters(api, reviewer, annotated):
    client = api(reviewer)
    response = client.get("/api/exports/preferences.jsonl")
    assert response.status_code == 200 and response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="preferences-')
    rows = _lines(response)
    assert [r["pair_id"] for r in rows] == sorted(p.id for p in PreferencePair.objects.approved())
    assert rows == list(exports.preference_records())

    theirs = _lines(client.get("/api/exports/preferences.jsonl?status=all&annotator=ann2"))
    assert sorted(r["status"] for r in theirs) == ["pending", "pending", "rejected"]
    assert _lines(client.get("/api/exports/preferences.jsonl?model_version=other")) == []
    bad = client.get("/api/exports/preferences.jsonl?status=maybe")
    assert bad.status_code == 400 and "Unknown pair status 'maybe'" in bad.json()["status"][0]

    skips = _lines(client.get("/api/exports/judgements.jsonl?kind=skip", HTTP_ACCEPT="application/jsonl"))
    assert [(r["annotator"], r["skip_reason"]) for r in skips] == [("ann", "unclear")]
    assert len(_lines(client.get("/api/exports/judgements.jsonl?annotator=ann"))) == 3
    assert [r["completion"] for r in _lines(client.get("/api/exports/sft.jsonl"))] == ["please stop that", "Please stop doing that."]
    assert len(_lines(client.get("/api/exports/sft.jsonl?references=true"))) == 10


def test_export_endpoints_are_in_a_valid_openapi_schema(annotator):
    from drf_spectacular.validation import validate_schema

    client = Client()
    client.force_login(annotator)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    validate_schema(schema)
    for name in ("preferences", "sft", "judgements"):
        content = schema["paths"][f"/api/exports/{name}.jsonl"]["get"]["responses"]["200"]["content"]
        assert content == {"application/jsonl": {"schema": {"type": "string", "format": "binary"}}}


def test_admin_action_downloads_selected_pairs(staff, annotated):
    client = Client()
    client.force_login(staff)
    selected = [annotated["theirs"][0].id, annotated["mine"][1].id]
    response = client.post(
        "/admin/annotations/preferencepair/", {"action": "export_pairs_jsonl", "_selected_action": selected}
    )
    assert response.status_code == 200 and response["Content-Disposition"].startswith('attachment; filename="pairs-')
    rows = _lines(response)
    assert [r["pair_id"] for r in rows] == sorted(selected) and {r["status"] for r in rows} == {"approved", "rejected"}
