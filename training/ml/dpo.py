"""Direct preference optimisation on annotated pairs with TRL's ``DPOTrainer``.

The parent checkpoint is both the starting point and the frozen reference model, so each round
moves the model relative to the version it was trained from.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .data import build_dpo_dataset, validate_dpo_records
from .device import DeviceInfo
from .runs import (
    CancelFn,
    ProgressFn,
    RunConfig,
    RunResult,
    common_training_arguments,
    load_model_and_tokenizer,
    lora_config,
    train_and_save,
)


MAX_BETA = 10.0  # DPO uses 0.01-0.5; beyond ~10 the policy cannot move from the reference at all


@dataclass
class DPORunConfig(RunConfig):
    """DPO settings. Defaults are sized for small annotation rounds (tens of pairs) on a 135M model."""

    beta: float = 0.1  # strength of the pull back to the reference; 0.1 is the DPO paper's default
    epochs: float = 2.0  # a round has few pairs, so see each twice
    batch_size: int = 4
    # TRL's 1e-6 targets 7B models and thousands of pairs: on 40 pairs it leaves a 135M model's
    # outputs untouched (`bench/bench_training.py --effect` measures how far a round moves it).
    DEFAULT_LEARNING_RATE: ClassVar[float] = 5e-6
    max_length: int = 128
    logging_steps: int = 2

    def validate(self) -> None:
        super().validate()
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not self.beta > 0:
            raise ValueError(f"beta must be a positive number, got {self.beta!r}")
        if self.beta > MAX_BETA:
            raise ValueError(f"beta must be at most {MAX_BETA}, got {self.beta!r}")


def run_dpo(
    cfg: DPORunConfig,
    records: Sequence[dict[str, Any]],
    *,
    meta: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> RunResult:
    """Train ``cfg.parent_dir`` on ``{"prompt": toxic, "chosen": ..., "rejected": ...}`` records.

    Writes a full checkpoint (LoRA merged) with ``data.jsonl`` and ``version.json`` to
    ``cfg.output_dir``. Raises ``ValueError`` for an invalid config or data, ``TrainingCancelled``
    when ``should_cancel()`` turns True.
    """
    from trl import DPOConfig, DPOTrainer

    cfg.validate()
    validate_dpo_records(records)
    records = list(records)

    def make_trainer(device: DeviceInfo, scratch: str) -> Any:
        model, tokenizer = load_model_and_tokenizer(cfg.parent_dir)
        # With LoRA the reference is the base with the adapter disabled; otherwise a frozen copy.
        reference = None if cfg.use_lora else load_model_and_tokenizer(cfg.parent_dir)[0]
        args = DPOConfig(**common_training_arguments(cfg, device, scratch), beta=cfg.beta)
        return DPOTrainer(
            model=model,
            ref_model=reference,
            args=args,
            train_dataset=build_dpo_dataset(records, tokenizer),
            processing_class=tokenizer,
            peft_config=lora_config(cfg) if cfg.use_lora else None,
        )

    return train_and_save(
        kind="dpo",
        cfg=cfg,
        records=records,
        make_trainer=make_trainer,
        meta=meta,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
