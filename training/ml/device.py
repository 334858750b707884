"""Device handling in one place: CUDA (bf16/fp16) when present, float32 on the CPU."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeviceInfo:
    device: str
    dtype: Any  # a torch.dtype; torch is imported only where a model is loaded
    bf16: bool
    fp16: bool

    @property
    def label(self) -> str:
        """What a user reads in the run's record, e.g. ``cuda (bfloat16)``."""
        return f"{self.device} ({str(self.dtype).removeprefix('torch.')})"


def pick_device(prefer: str | None = None) -> DeviceInfo:
    """``cuda`` with bf16 (or fp16 on older cards) when available, else ``cpu`` in float32.

    ``prefer`` ("cpu"/"cuda") or the ``DETOX_DEVICE`` variable forces a choice.
    """
    import torch

    choice = prefer or os.environ.get("DETOX_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return DeviceInfo(choice, torch.bfloat16, bf16=True, fp16=False)
        return DeviceInfo(choice, torch.float16, bf16=False, fp16=True)
    return DeviceInfo("cpu", torch.float32, bf16=False, fp16=False)


def limit_cpu_threads(default: int = 2) -> None:
    """Cap torch's CPU threads (``TORCH_NUM_THREADS``) so two jobs never oversubscribe the cores."""
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", default)))
