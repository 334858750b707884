"""Device handling in one place: CUDA (bf16/fp16) when present, else the CPU in float32 (with bf16 autocast
for training where the CPU multiplies bf16 natively)."""
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
        """What a user reads in the run's record, e.g. ``cuda (bfloat16)`` or ``cpu (float32, bf16 autocast)``."""
        dtype = str(self.dtype).removeprefix("torch.")
        if self.device == "cpu" and self.bf16:
            return f"cpu ({dtype}, bf16 autocast)"
        return f"{self.device} ({dtype})"


def cpu_bf16_autocast() -> bool:
    """Train on the CPU with bf16 autocast (fp32 master weights)? ``TRAIN_CPU_BF16`` = auto (default: where the
    CPU has AVX512-BF16 or AMX, whose bf16 matrix products ran 5-20x the fp32 rate on our 2-core machine), 1 or 0."""
    import torch

    setting = os.environ.get("TRAIN_CPU_BF16", "auto").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    supported = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if setting in ("1", "true", "yes", "on"):
        return supported or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return supported


def pick_device(prefer: str | None = None) -> DeviceInfo:
    """``cuda`` with bf16 (or fp16 on older cards) when available, else ``cpu``: weights in float32, training under
    bf16 autocast where ``cpu_bf16_autocast()`` says so (generation on the CPU ignores ``bf16``).

    ``prefer`` ("cpu"/"cuda") or the ``DETOX_DEVICE`` variable forces a choice.
    """
    import torch

    choice = prefer or os.environ.get("DETOX_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return DeviceInfo(choice, torch.bfloat16, bf16=True, fp16=False)
        return DeviceInfo(choice, torch.float16, bf16=False, fp16=True)
    return DeviceInfo("cpu", torch.float32, bf16=cpu_bf16_autocast(), fp16=False)


def limit_cpu_threads(default: int = 2) -> None:
    """Cap torch's CPU threads (``TORCH_NUM_THREADS``) so two jobs never oversubscribe the cores."""
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", default)))


@dataclass(frozen=True)
class CpuSplit:
    """Threads each kind of job may use on this machine."""

    training: int
    generation: int


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def split_cpu_threads(cores: int, *, training_running: bool) -> CpuSplit:
    """How ``cores`` are shared, decided when a job starts.

    Generation is bursty and latency-bound (annotators wait for it), training long and throughput-
    bound. With no training run going, generation takes every core; while one runs, training takes
    ``cores - 1`` and generation 1, so together they never ask for more threads than there are cores
    (on a 1-core machine both get 1: the least oversubscription possible).
    """
    cores = max(1, cores)
    if not training_running:
        return CpuSplit(training=cores, generation=cores)
    return CpuSplit(training=max(1, cores - 1), generation=1)


def batch_threads() -> int:
    """Threads of a batch job (an evaluation, an arena generation): half the cores, at least 1, so
    one beside a refill and a training run adds little oversubscription; they are not waited on."""
    return max(1, available_cores() // 2)


_generation_budget: int | None = None


def set_generation_budget(threads: int | None) -> None:
    """This worker's share for the job it is starting (``split_cpu_threads`` for a refill,
    ``batch_threads`` for batch jobs); None clears it."""
    global _generation_budget
    _generation_budget = threads


def take_thread_share(threads: int) -> None:
    """Start a job with ``threads`` as its share: generators use it and torch is capped to it
    (``GENERATION_THREADS`` / ``TORCH_NUM_THREADS`` still win, see ``generation_threads``)."""
    set_generation_budget(threads)
    limit_cpu_threads(generation_threads())


def generation_threads(default: int | None = None) -> int:
    """CPU threads one generator may use.

    ``GENERATION_THREADS`` wins; else ``TORCH_NUM_THREADS`` (the cap ``limit_cpu_threads`` applies
    to torch); else the budget the refill job set from ``split_cpu_threads``; else ``default``;
    else every core this process may run on. A generation worker on
    an otherwise idle 2-core box should use both cores; set ``GENERATION_THREADS=1`` (or
    ``TORCH_NUM_THREADS=1``) when training shares the machine. The torch backends follow
    ``torch.set_num_threads`` (set by ``limit_cpu_threads``, or by the generator itself when
    ``GENERATION_THREADS`` is set); CTranslate2 gets this number as ``intra_threads``.
    """
    for name in ("GENERATION_THREADS", "TORCH_NUM_THREADS"):
        value = os.environ.get(name)
        if value:
            return max(1, int(value))
    if _generation_budget is not None:
        return max(1, _generation_budget)
    if default is not None:
        return max(1, default)
    return available_cores()
