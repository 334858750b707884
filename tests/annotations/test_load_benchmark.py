"""The team-load benchmark: how busy the machine was (from the load it measured, not a fixed note), and
the pieces of its ``--model`` supply: the Procfile's worker, the linked checkpoint, items in a window."""
from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "load_annotators.py"


@pytest.fixture(scope="module")
def load_bench():
    spec = importlib.util.spec_from_file_location("load_annotators_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_a_quiet_start_reads_idle_and_a_busy_one_shared_with_the_measured_range(load_bench):
    assert load_bench.machine_note(0.4, 2.1, 2) == "idle: load 0.40 at start on 2 cores (max 2.10 during the run)"
    assert load_bench.machine_note(5.4, 7.1, 2) == (
        "shared: load 5.40-7.10 on 2 cores; latencies include waiting for a core"
    )
    assert load_bench.machine_note(1.5, 1.5, 2).startswith("shared:")  # 1.5 on 2 cores is no longer idle
    assert load_bench.machine_note(None, None, 2) == "load not measured"


def test_the_worker_it_starts_is_the_procfiles_generation_line_on_the_checkouts_python(load_bench):
    assert load_bench.procfile_command("generation") == [
        str(load_bench.REPO / ".venv" / "bin" / "python"), "manage.py", "rqworker", "generation",
        "--worker-class", "rq.SimpleWorker",
    ]


@pytest.mark.django_db
def test_a_model_directory_is_served_from_the_scratch_store_and_never_written(
    load_bench, tiny_store, tmp_path, settings
):
    source = tiny_store / "tiny"
    before = sorted(p.name for p in source.iterdir())
    settings.MODEL_STORE = tmp_path / "store"

    version = load_bench.register_checkpoint(load_bench.link_checkpoint(source, settings.MODEL_STORE))

    assert (version.name, version.kind, version.is_active) == ("tiny", "base", True)
    assert version.path == tmp_path / "store" / "tiny" and version.family == "causal"
    (version.path / "ct2-int8").mkdir()  # what a worker converting the checkpoint would write
    assert sorted(p.name for p in source.iterdir()) == before


@pytest.mark.django_db
def test_items_in_the_window_count_only_the_versions_items_created_in_it(load_bench, filled_pool, settings):
    from django.utils import timezone

    from annotations.models import AnnotationItem
    from training.models import ModelVersion

    start = timezone.now()
    end = start + timedelta(seconds=10)
    items = list(AnnotationItem.objects.order_by("id"))
    AnnotationItem.objects.filter(pk__in=[i.pk for i in items[:2]]).update(created_at=start - timedelta(seconds=1))
    AnnotationItem.objects.filter(pk=items[2].pk).update(created_at=end)  # the window ends before it
    AnnotationItem.objects.filter(pk__in=[i.pk for i in items[3:]]).update(created_at=start + timedelta(seconds=5))
    other = ModelVersion.objects.create(name="other", kind="base", directory="other")
    AnnotationItem.objects.filter(pk=items[3].pk).update(model_version=other)

    assert load_bench.items_created_between(filled_pool.pk, start, end) == len(items) - 4
    assert load_bench.candidate_backends(filled_pool.pk) == ["stub"]


def test_simulated_annotators_back_off_like_the_page_after_early_empty_answers(load_bench):
    """A client that re-asked at once would hammer the server while the pool is empty; judge.js does not."""
    assert [load_bench.backoff_seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 15, 15]
