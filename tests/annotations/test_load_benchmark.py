"""The team-load benchmark says how busy the machine was from the load it measured, not a fixed note."""
from __future__ import annotations

import importlib.util
import sys
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
