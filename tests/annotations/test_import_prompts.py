"""manage.py import_prompts: formats, no duplicates, malformed rows with line numbers, held-out split."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotations.importers import read_prompts
from annotations.models import Prompt, is_heldout_hash, text_hash
from tests.conftest import shared_file

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_prompts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_paradetox_import_keeps_references_and_reimport_never_duplicates():
    path = shared_file("paradetox.tsv")
    out, err = run(str(path), "--format", "paradetox")
    count = Prompt.objects.count()
    assert count > 10_000
    assert "malformed row(s) skipped" in out
    prompt = Prompt.objects.get(text="he had steel balls too !")
    assert prompt.references == ["he was brave too!"]
    assert prompt.source == "paradetox"
    # Held-out split: deterministic by text hash, about 5 %.
    assert 0.03 < Prompt.objects.heldout().count() / count < 0.07
    assert all(is_heldout_hash(p.text_hash, 5) == p.is_heldout for p in Prompt.objects.all()[:500])
    out, _ = run(str(path), "--format", "paradetox")
    assert Prompt.objects.count() == count
    assert "0 new prompt(s)" in out


def test_multiline_quoted_paradetox_rows_are_read_whole():
    path = shared_file("paradetox.tsv")
    records = [r for r in read_prompts(path, "paradetox") if getattr(r, "text", "").startswith("schandelmeier")]
    assert records and all("\n" not in ref for ref in records[0].references)


def test_cannot_rewrite_pool_has_no_references_and_strips_quotes():
    path = shared_file("paradetox_cannot_rewrite.tsv")
    run(str(path), "--format", "cannot_rewrite")
    prompt = Prompt.objects.get(text__startswith="your thinking is the train wreck")
    assert prompt.references == [] and not prompt.text.startswith('"')
    assert Prompt.objects.count() > 10_000


def test_jsonl_and_csv_with_malformed_rows_report_line_numbers(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        json.dumps({"toxic": "you are dumb", "references": ["you are wrong"]}) + "\n"
        + "{not json\n"
        + json.dumps({"toxic": "   "}) + "\n"
        + json.dumps({"text": "shut up", "neutral1": "please be quiet"}) + "\n"
    )
    out, err = run(str(jsonl), "--format", "jsonl")
    assert "line 2: invalid JSON" in err and "line 3: empty toxic text" in err
    assert "2 new prompt(s)" in out and "2 malformed row(s) skipped" in out
    assert Prompt.objects.get(text="shut up").references == ["please be quiet"]

    csv_file = tmp_path / "p.csv"
    csv_file.write_text("toxic,neutral1\nyou are dumb,you are not right\n,empty\nwhat the hell,what is this\n")
    out, err = run(str(csv_file), "--format", "csv")
    assert "line 3: empty toxic text" in err
    assert "1 new prompt(s), 1 already present (1 got new references)" in out
    assert Prompt.objects.get(text="you are dumb").references == ["you are wrong", "you are not right"]


def test_nothing_valid_exits_non_zero_and_keeps_existing_prompts(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"toxic": "keep me"}) + "\n")
    run(str(good), "--format", "jsonl")
    bad = tmp_path / "bad.csv"
    bad.write_text("comment\nhello\n")
    with pytest.raises(CommandError, match="No valid rows read from"):
        run(str(bad), "--format", "csv")
    assert list(Prompt.objects.values_list("text", flat=True)) == ["keep me"]


def test_missing_file_and_missing_arguments_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(str(tmp_path / "nope.tsv"))
    with pytest.raises(CommandError, match="Give either a file PATH or --dataset NAME."):
        run()


def test_hub_dataset_fails_with_a_clear_offline_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(CommandError, match="This machine may be offline: download the file and pass its path instead."):
        run("--dataset", "s-nlp/paradetox-does-not-exist-here")


def test_text_hash_ignores_case_and_spacing():
    assert text_hash("You  are dumb ") == text_hash("you are dumb")
