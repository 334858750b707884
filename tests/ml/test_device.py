"""pick_device: which precision a CPU training run uses, and what its record says."""
from __future__ import annotations


def test_cpu_training_uses_bf16_autocast_only_where_the_setting_and_the_cpu_allow(monkeypatch):
    """bf16 matrix products ran 5-20x the fp32 rate on an AVX512-BF16 CPU; ``TRAIN_CPU_BF16=0`` keeps fp32,
    and the run's recorded device says which one trained it."""
    import torch

    from training.ml.device import cpu_bf16_autocast, pick_device

    monkeypatch.setenv("TRAIN_CPU_BF16", "0")
    off = pick_device("cpu")
    assert (off.bf16, off.dtype, off.label) == (False, torch.float32, "cpu (float32)")
    monkeypatch.setenv("TRAIN_CPU_BF16", "auto")
    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert cpu_bf16_autocast() is native
    auto = pick_device("cpu")
    assert auto.dtype == torch.float32  # master weights stay fp32; generation on the CPU ignores bf16
    assert auto.label == ("cpu (float32, bf16 autocast)" if native else "cpu (float32)")
