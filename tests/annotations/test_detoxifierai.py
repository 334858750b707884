"""DetoxifierAI's user_preferences.json: import as prompts, imported candidates, judgements and pending pairs;
re-import changes nothing; export writes the same file back."""
from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from annotations import review
from annotations.models import AnnotationItem, Candidate, Judgement, PreferencePair, Prompt
from annotations.pool import items_with_capacity

pytestmark = pytest.mark.django_db

ENTRIES = [
    {"toxic": "you are a stupid idiot", "chosen": "you are not very smart", "rejected": ["you are an idiot", "stupid you"]},
    {"toxic": "shut up you fool", "chosen": "please be quiet", "rejected": ["shut up", "be quiet fool"]},
    {"toxic": "this is damn crap", "chosen": "this is not good", "rejected": ["this is crap", "damn this"]},
]


@pytest.fixture
def no_heldout(settings):
    settings.HELDOUT_PERCENT = 0  # every imported entry may be exported again


def write(path, entries) -> str:
    path.write_text(json.dumps(entries, indent=2))
    return str(path)


def test_import_creates_prompts_imported_candidates_judgements_and_pending_pairs(tiny_version, no_heldout, tmp_path, capsys):
    call_command("import_preferences", write(tmp_path / "user_preferences.json", ENTRIES), "--format", "detoxifierai")
    assert "3 new entries (6 pending pair(s), 3 new prompt(s), 0 on held-out prompts), 0 already present" in capsys.readouterr().out
    assert Prompt.objects.count() == 3 and AnnotationItem.objects.count() == 3
    assert Candidate.objects.count() == 9
    assert {c.decoding["provenance"] for c in Candidate.objects.all()} == {"imported"}
    judgements = Judgement.objects.all()
    assert {(j.kind, j.user.username, j.chosen_position) for j in judgements} == {("choice", "detoxifierai", 1)}
    pairs = PreferencePair.objects.order_by("id")
    assert [(p.status, p.source, p.model_version) for p in pairs] == [("pending", "imported", tiny_version)] * 6
    assert [(p.chosen_text, p.rejected_text) for p in pairs[:2]] == [
        ("you are not very smart", "you are an idiot"),
        ("you are not very smart", "stupid you"),
    ]
    assert not items_with_capacity(tiny_version).exists()  # imported items never reach annotators

    call_command("import_preferences", str(tmp_path / "user_preferences.json"))
    assert "0 new entries (0 pending pair(s), 0 new prompt(s), 0 on held-out prompts), 3 already present" in capsys.readouterr().out
    assert (Candidate.objects.count(), Judgement.objects.count(), PreferencePair.objects.count()) == (9, 3, 6)


def test_malformed_entries_are_reported_with_their_line(tiny_version, no_heldout, tmp_path, capsys):
    path = tmp_path / "prefs.json"
    path.write_text(
        '[\n  {"toxic": "you fool", "chosen": "you", "rejected": ["fool"]},\n'
        '  {"toxic": "", "chosen": "x", "rejected": ["y"]},\n'
        '  {"toxic": "damn it", "chosen": "oh no", "rejected": "oh no"},\n'
        '  ["not", "an", "object"]\n]\n'
    )
    call_command("import_preferences", str(path))
    captured = capsys.readouterr()
    assert "skipped line 3: 'toxic' is missing or not a non-empty string" in captured.err
    assert "skipped line 4: no rejected text that differs from 'chosen'" in captured.err
    assert "skipped line 5: expected an object with toxic, chosen and rejected" in captured.err
    assert "1 new entry (1 pending pair(s)" in captured.out and "3 malformed skipped" in captured.out


@pytest.mark.parametrize(
    "content, message",
    [
        ('[{"toxic": "a", "chosen": "b", "rejected": []}]', "No valid entries in"),
        ('{"toxic": "a"}', "expected a JSON list"),
        ('[\n{"toxic": "a",\n "chosen": }]', "line 3: invalid JSON"),
    ],
)
def test_a_file_with_nothing_valid_fails(tiny_version, tmp_path, content, message):
    path = tmp_path / "prefs.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_preferences", str(path))
    assert PreferencePair.objects.count() == 0


def test_import_needs_a_model_version(db, tmp_path):
    with pytest.raises(CommandError, match=r"No active model version: register one first"):
        call_command("import_preferences", write(tmp_path / "p.json", ENTRIES))
    with pytest.raises(CommandError, match=r"No such version: t5-old"):
        call_command("import_preferences", str(tmp_path / "p.json"), "--model-version", "t5-old")


def test_round_trip_through_export(tiny_version, reviewer, no_heldout, tmp_path):
    call_command("import_preferences", write(tmp_path / "in.json", ENTRIES))
    call_command("export", str(tmp_path / "out"), "--what", "detoxifierai", "--status", "all")
    assert json.loads((tmp_path / "out" / "user_preferences.json").read_text()) == ENTRIES
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["files"]["user_preferences.json"]["rows"] == 3
    # By default only approved pairs are exported, as for training.
    review.approve_pairs(reviewer=reviewer, pairs=PreferencePair.objects.filter(prompt__text="shut up you fool"))
    call_command("export", str(tmp_path / "approved"), "--what", "detoxifierai")
    assert json.loads((tmp_path / "approved" / "user_preferences.json").read_text()) == [ENTRIES[1]]


def test_importer_accounts_made_before_system_accounts_are_marked_by_the_migration(tiny_version, make_user, tmp_path):
    """The importer's own account (no password) joins the system accounts; a person named with
    --importer stays a person."""
    import importlib

    from django.apps import apps

    from core.roles import is_system_account

    migration = importlib.import_module("annotations.migrations.0006_mark_importer_system_accounts")
    alice = make_user("alice")
    call_command("import_preferences", write(tmp_path / "a.json", ENTRIES[:2]), "--format", "detoxifierai")
    call_command("import_preferences", write(tmp_path / "b.json", ENTRIES[2:]), "--format", "detoxifierai", "--importer", "alice")
    importer = Judgement.objects.filter(user__username="detoxifierai").first().user
    assert is_system_account(importer) and not is_system_account(alice)
    importer.groups.clear()  # as an account created before system accounts existed
    migration.mark_importer_accounts(apps, None)
    assert is_system_account(importer) and not is_system_account(alice)
