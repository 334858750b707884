"""manage.py prune_versions: weights of never-used versions go; the active lineage, metadata and rows stay."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from core.actions import ActionRefused
from training import retention, services
from training.models import ModelVersion, TrainingRun, VersionActivation

pytestmark = pytest.mark.django_db


def checkpoint(store, name, *, kind="sft", parent=None, active=False, weights=1000):
    """A version with fake weights, a CTranslate2 copy and the metadata that must survive pruning."""
    d = store / name
    (d / "ct2-int8").mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w" * weights)
    (d / "ct2-int8" / "model.bin").write_bytes(b"c" * 500)
    (d / "version.json").write_text(json.dumps({"parent": parent.name if parent else None}))
    (d / "config.json").write_text("{}")
    (d / "data.jsonl").write_text('{"prompt": "x"}\n')
    return ModelVersion.objects.create(name=name, kind=kind, directory=name, parent=parent, is_active=active)


@pytest.fixture
def lineage(settings, tmp_path):
    """base → sft-a (active, activated) → dpo-b (never activated) → dpo-c (never activated);
    sft-a → sft-dead (never activated, nothing descends)."""
    settings.MODEL_STORE = tmp_path
    base = checkpoint(tmp_path, "base", kind="base")
    a = checkpoint(tmp_path, "sft-a", parent=base, active=True)
    VersionActivation.objects.create(version=base)
    VersionActivation.objects.create(version=a, previous=base)
    b = checkpoint(tmp_path, "dpo-b", kind="dpo", parent=a)
    c = checkpoint(tmp_path, "dpo-c", kind="dpo", parent=b)
    dead = checkpoint(tmp_path, "sft-dead", parent=a)
    return {v.name: v for v in (base, a, b, c, dead)}


def weights_left(version) -> bool:
    return (version.path / "model.safetensors").exists() or (version.path / "ct2-int8").exists()


def test_active_version_and_its_ancestors_are_never_pruned(lineage):
    report = retention.prune_versions(keep_recent=0)
    assert {s.version.name for s in report.pruned} == {"dpo-b", "dpo-c", "sft-dead"}
    for name in ("base", "sft-a"):
        assert weights_left(lineage[name])
        assert ModelVersion.objects.get(name=name).pruned_at is None
    for name in ("dpo-b", "dpo-c", "sft-dead"):
        v = ModelVersion.objects.get(name=name)
        assert v.pruned_at is not None and v.pruned_bytes == 1500
        assert not weights_left(v)
        assert {p.name for p in v.path.iterdir()} == {"version.json", "config.json", "data.jsonl"}


def test_a_kept_version_keeps_its_parents(lineage):
    """dpo-c is among the newest, so dpo-b (its parent) keeps its weights too."""
    ModelVersion.objects.filter(name="sft-dead").update(created_at=lineage["base"].created_at)
    report = retention.prune_versions(keep_recent=1)
    assert [s.version.name for s in report.pruned] == ["sft-dead"]
    reasons = {s.version.name: s.kept_because for s in report.versions}
    assert reasons["dpo-c"] == "among the 1 newest" and reasons["dpo-b"] == "ancestor of dpo-c"


def test_the_parent_of_a_running_training_run_is_kept(lineage):
    TrainingRun.objects.create(kind="dpo", parent=lineage["sft-dead"], output_directory="dpo-next", status="running")
    retention.prune_versions(keep_recent=0)
    assert weights_left(lineage["sft-dead"])


def test_dry_run_removes_nothing_and_prints_bytes_per_version(lineage, capsys):
    call_command("prune_versions", "--dry-run", "--keep-recent", "0")
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("dpo-b: "))
    assert line.endswith("would free 1,500 B") and " B before, " in line
    assert "sft-a: " in out and "kept (active)" in out
    assert "3 version(s) would be pruned" in out
    assert all(weights_left(v) for v in lineage.values())
    assert not ModelVersion.objects.filter(pruned_at__isnull=False).exists()
    report = retention.plan_pruning(keep_recent=0)
    assert report.bytes_freed == 3 * 1500 and report.bytes_after == report.bytes_before - 4500


def test_prune_then_run_again_prints_pruned_earlier(lineage, capsys):
    call_command("prune_versions", "--keep-recent", "0")
    assert "3 version(s) pruned" in capsys.readouterr().out
    call_command("prune_versions", "--keep-recent", "0")
    out = capsys.readouterr().out
    assert "dpo-b: " in out and "pruned earlier" in out and "0 version(s) pruned" in out


def test_activating_a_pruned_version_is_refused_with_a_message(lineage, staff, api, client):
    retention.prune_versions(keep_recent=0)
    pruned = ModelVersion.objects.get(name="dpo-b")
    with pytest.raises(ActionRefused, match="Version dpo-b cannot be activated: its weights were pruned"):
        services.activate_version(version=pruned, user=staff, reason="try", override=True)
    response = api(staff).post(f"/api/versions/{pruned.pk}/activate/", {"reason": "try", "override": True}, format="json")
    assert response.status_code == 409 and "weights were pruned" in response.json()["detail"]
    assert ModelVersion.objects.get(is_active=True).name == "sft-a"
    listed = {v["name"]: v for v in api(staff).get("/api/versions/").json()["results"]}
    assert listed["dpo-b"]["pruned_at"] and listed["dpo-b"]["pruned_bytes"] == 1500 and listed["sft-a"]["pruned_at"] is None
    client.force_login(staff)
    page = client.get("/training/versions/")
    assert page.status_code == 200 and "weights pruned" in page.content.decode()


def test_a_pruned_version_cannot_be_a_training_parent(lineage):
    retention.prune_versions(keep_recent=0)
    with pytest.raises(ActionRefused, match="cannot be used as a parent"):
        services.start_training_run(kind="sft", parent=ModelVersion.objects.get(name="sft-dead"))
