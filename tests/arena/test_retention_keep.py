"""Model-store retention never frees the weights of a version an open arena comparison still serves."""
from __future__ import annotations

import pytest

from arena.models import Comparison
from tests.training.test_retention import checkpoint, lineage, weights_left  # noqa: F401 (fixture)
from training import retention

pytestmark = pytest.mark.django_db


def test_versions_of_an_open_comparison_keep_their_weights(lineage):  # noqa: F811
    comparison = Comparison.objects.create(name="b vs dead", matches_wanted=2)
    comparison.versions.set([lineage["dpo-b"], lineage["sft-dead"]])
    report = retention.prune_versions(keep_recent=0)
    assert {s.version.name for s in report.pruned} == {"dpo-c"}
    kept = {s.version.name: s.kept_because for s in report.versions}
    assert kept["sft-dead"] == "in the open arena comparison 'b vs dead'"
    assert weights_left(lineage["dpo-b"]) and weights_left(lineage["sft-dead"])


def test_a_closed_comparison_no_longer_protects_its_versions(lineage):  # noqa: F811
    from django.utils import timezone

    comparison = Comparison.objects.create(name="old", matches_wanted=2, is_open=False, closed_at=timezone.now())
    comparison.versions.set([lineage["sft-dead"]])
    report = retention.prune_versions(keep_recent=0)
    assert {s.version.name for s in report.pruned} == {"dpo-b", "dpo-c", "sft-dead"}
