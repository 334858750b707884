"""Assertions shared by the SFT and DPO tests."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from training.ml.runs import SCRATCH_PREFIX


def leftovers(store: Path, tempdir: Path) -> list[Path]:
    """Anything a failed or cancelled run must not leave: atomic-write temporaries and trainer scratch."""
    return sorted(store.glob(".tmp-*")) + sorted(tempdir.glob(f"{SCRATCH_PREFIX}*"))


def weights_changed(parent: Path, child: Path) -> bool:
    from safetensors.torch import load_file

    before, after = load_file(parent / "model.safetensors"), load_file(child / "model.safetensors")
    assert before.keys() == after.keys()
    return any(not torch.equal(before[k], after[k]) for k in before)


def varied_length_pairs(reject: Callable[[str], str], count: int = 96) -> list[dict[str, str]]:
    """DPO pairs whose answers range from one word to a few dozen, as a real round's do (padding tests)."""
    words = "please be a little kinder to the people around you every day".split()
    answers = [" ".join(words[: 1 + i % 12] * (1 + i % 3)) for i in range(count)]
    return [{"prompt": f"you fool {i}", "chosen": text, "rejected": reject(text)} for i, text in enumerate(answers)]
