"""Fixtures for the plain-Python ML tests (no Django, no Redis): a tiny checkpoint built once, one CPU thread,
private temp dirs."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from training.ml.tiny import build_tiny_checkpoint

TOXIC_TO_NEUTRAL = [
    ("you are a stupid idiot", "you are not very smart"),
    ("shut up you fool", "please be quiet"),
    ("this is damn crap", "this is not good"),
    ("what the hell are you doing", "what are you doing"),
]


@pytest.fixture(autouse=True)
def _isolated_settings() -> None:
    """Overrides tests/conftest.py's Django/Redis autouse fixtures: plain ML tests need neither."""


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    """See ``_isolated_settings``."""


@pytest.fixture(autouse=True)
def one_thread() -> None:
    # Another process may be training on the same two cores.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route ``tempfile`` into the test's own directory, so leftover scratch dirs can be counted."""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Where run outputs go, like the model store."""
    directory = tmp_path / "store"
    directory.mkdir()
    return directory


@pytest.fixture
def sft_records() -> list[dict[str, str]]:
    return [{"prompt": toxic, "completion": neutral} for toxic, neutral in TOXIC_TO_NEUTRAL] * 3


@pytest.fixture
def dpo_records() -> list[dict[str, str]]:
    return [{"prompt": toxic, "chosen": neutral, "rejected": toxic} for toxic, neutral in TOXIC_TO_NEUTRAL] * 3

