"""Supervised fine-tuning on (toxic, neutral rewrite) pairs with TRL's ``SFTTrainer``.

The loss covers the rewrite only (prompt-completion data), which ends with the eos token so the
model learns to stop after one sentence. Encoder-decoder parents train with ``Seq2SeqTrainer``
instead (``seq2seq.sft_trainer``).
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .data import build_sft_dataset, validate_sft_records
from .device import DeviceInfo
from .families import SEQ2SEQ, family_of
from .runs import (
    CancelFn,
    ProgressFn,
    RunConfig,
    RunResult,
    common_training_arguments,
    load_model_and_tokenizer,
    train_and_save,
    trainer_inputs,
)


MAX_SUBSET_SIZE = 10_000_000


@dataclass
class SFTRunConfig(RunConfig):
    """SFT settings. Defaults suit full fine-tuning of SmolLM2-135M on short ParaDetox rewrites."""

    epochs: float = 1.0
    batch_size: int = 8
    # Measured on the quick CPU path (800 ParaDetox references, 100 steps, whole held-out split): 1.5e-4 gave
    # J 0.628 against 0.553 at 5e-5 (bench/RESULTS.md "Learning loop"); TRL's default 2e-5 barely moves short runs.
    DEFAULT_LEARNING_RATE: ClassVar[float] = 1.5e-4
    DEFAULT_LORA_LEARNING_RATE: ClassVar[float] = 5e-4  # 10x the earlier full rate; not re-measured at 1.5e-4
    max_length: int = 128
    subset_size: int | None = None  # train on a seeded random sample of this many records
    # Batches of rows of like length (transformers' LengthGroupedSampler): random batches of 8 ParaDetox
    # rows are 26 % padding tokens, grouped ones 1 %. Measured on the quick CPU path (bench/RESULTS.md,
    # "Fourth session"): 339 s of training instead of 472, ΔJ +0.004 [-0.021, +0.028] on the held-out split.
    group_by_length: bool = True
    logging_steps: int = 10

    def validate(self) -> None:
        super().validate()
        if self.subset_size is not None and (
            isinstance(self.subset_size, bool) or not isinstance(self.subset_size, int) or self.subset_size < 1
        ):
            raise ValueError(f"subset_size must be a positive whole number or None, got {self.subset_size!r}")
        if self.subset_size is not None and self.subset_size > MAX_SUBSET_SIZE:
            raise ValueError(f"subset_size must be at most {MAX_SUBSET_SIZE}, got {self.subset_size!r}")


def select_subset(records: Sequence[dict[str, Any]], size: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random sample of ``size`` records (in their original order), or all of them."""
    if size is None or size >= len(records):
        return list(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), size))
    return [records[i] for i in keep]


def sampling_arguments(cfg: SFTRunConfig) -> dict[str, str]:
    """The trainer's sampler setting for ``cfg`` (``group_by_length`` or transformers' random default)."""
    return {"train_sampling_strategy": "group_by_length" if cfg.group_by_length else "random"}


def run_sft(
    cfg: SFTRunConfig,
    records: Sequence[dict[str, Any]],
    *,
    meta: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> RunResult:
    """Fine-tune ``cfg.parent_dir`` on ``{"prompt": toxic, "completion": neutral}`` records.

    Writes a full checkpoint (LoRA merged) with ``data.jsonl`` (the records actually trained on,
    after ``subset_size``) and ``version.json`` to ``cfg.output_dir``. Raises ``ValueError`` for an
    invalid config or data, ``TrainingCancelled`` when ``should_cancel()`` turns True.
    """
    from trl import SFTConfig, SFTTrainer

    cfg.validate()
    validate_sft_records(records)
    records = select_subset(records, cfg.subset_size, cfg.seed)

    def make_trainer(device: DeviceInfo, scratch: str) -> Any:
        if family_of(cfg.parent_dir) == SEQ2SEQ:
            from .seq2seq import sft_trainer

            return sft_trainer(cfg, records, device, scratch)
        model, tokenizer = load_model_and_tokenizer(cfg.parent_dir)
        args = SFTConfig(
            **common_training_arguments(cfg, device, scratch),
            **sampling_arguments(cfg),
            completion_only_loss=True,
            include_num_input_tokens_seen="non_padding",
        )
        return SFTTrainer(**trainer_inputs(cfg, model, args, build_sft_dataset(records, tokenizer), tokenizer))

    callbacks = dict(on_progress=on_progress, should_cancel=should_cancel)
    return train_and_save(kind="sft", cfg=cfg, records=records, make_trainer=make_trainer, meta=meta, **callbacks)
