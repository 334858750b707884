"""manage.py check_consistency: orphan checkpoints and half-written directories are found and put aside."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings, tmp_path):
    settings.MODEL_STORE = tmp_path
    (tmp_path / "base-x").mkdir()
    ModelVersion.objects.create(name="base-x", kind="base", directory="base-x", is_active=True)
    return tmp_path


def test_a_consistent_store_passes(store, capsys):
    call_command("check_consistency")
    assert "agree" in capsys.readouterr().out


def test_orphans_and_temporaries_are_reported_then_moved_aside(store, capsys):
    parent = ModelVersion.objects.get()
    (store / "sft-20261130-killed-before-commit").mkdir()
    (store / "sft-20261130-killed-before-commit" / "model.safetensors").write_bytes(b"weights")
    (store / ".tmp-dpo-20261130-dead-1a2b3c4d").mkdir()
    TrainingRun.objects.create(kind="sft", parent=parent, output_directory="sft-running", status="running")
    (store / ".tmp-sft-running-5e6f7a8b").mkdir()  # a run still writing: left alone
    with pytest.raises(CommandError, match="Inconsistencies found"):
        call_command("check_consistency")
    out = capsys.readouterr().out
    assert "orphan checkpoint directory (no version): sft-20261130-killed-before-commit" in out
    assert "stale temporary directory: .tmp-dpo-20261130-dead-1a2b3c4d" in out and "sft-running" not in out
    call_command("check_consistency", "--repair")
    assert (store / ".orphans" / "sft-20261130-killed-before-commit" / "model.safetensors").read_bytes() == b"weights"
    assert not (store / ".tmp-dpo-20261130-dead-1a2b3c4d").exists() and (store / ".tmp-sft-running-5e6f7a8b").exists()
    call_command("check_consistency")


def test_a_version_whose_directory_is_gone_needs_a_person(store):
    ModelVersion.objects.create(name="lost", kind="sft", directory="sft-lost")
    with pytest.raises(CommandError, match="Inconsistencies found"):
        call_command("check_consistency")
    with pytest.raises(CommandError, match="restore the checkpoint from a backup"):
        call_command("check_consistency", "--repair")
