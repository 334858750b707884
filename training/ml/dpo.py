"""Direct preference optimisation on annotated pairs with TRL's ``DPOTrainer``.

The parent checkpoint is both the starting point and the frozen reference model, so each round
moves the model relative to the version it was trained from. TRL's trainer is decoder-only:
encoder-decoder parents train with the same sigmoid loss in ``seq2seq.dpo_trainer``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .batching import length_grouped
from .data import build_dpo_dataset, validate_dpo_records
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


MAX_BETA = 10.0  # DPO uses 0.01-0.5; beyond ~10 the policy cannot move from the reference at all
# TRL 1.16's DPO losses that need no setting beyond beta. Left out: "exo_pair" and "robust" (they need
# label_smoothing, not exposed here) and "sft" (use rpo_alpha, which adds it to the preference loss).
LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down",
    "discopop", "sigmoid_norm",
)


@dataclass
class DPORunConfig(RunConfig):
    """DPO settings. Defaults are sized for small annotation rounds (tens of pairs) on a 135M model."""

    beta: float = 0.1  # strength of the pull back to the reference; 0.1 is the DPO paper's default
    epochs: float = 2.0  # a round has few pairs, so see each twice
    batch_size: int = 4
    # TRL's 1e-6 targets 7B models and thousands of pairs: on 40 pairs it leaves a 135M model's
    # outputs untouched. On the same 191 pairs of a ~200-pair round (with the RPO term), 2e-5 moved J by
    # +0.010 [-0.014, +0.033] and 5e-6 by -0.015 [-0.037, +0.006], STA -0.038 (bench/RESULTS.md).
    DEFAULT_LEARNING_RATE: ClassVar[float] = 2e-5
    DEFAULT_LORA_LEARNING_RATE: ClassVar[float] = 5e-5  # 10x the earlier full rate; not re-measured
    max_length: int = 128
    logging_steps: int = 2
    loss_type: str = "sigmoid"  # TRL's preference loss; "sigmoid" is the DPO paper's (see LOSS_TYPES)
    # Weight of an NLL (SFT) term on the chosen answers, as in RPO (Pang et al., 2024): keeps the
    # chosen texts, annotators' own rewrites included, likely while the margin grows. Measured on one
    # round of 175 pairs (bench/RESULTS.md, learning loop): plain DPO (0) lowered J significantly
    # (ΔJ -0.024 [-0.046, -0.001]: the model drifted toward copying the toxic input), 1.0 did not.
    rpo_alpha: float = 1.0
    # Batches of pairs of like length. On one round's 435 records (bench/RESULTS.md, seventh session):
    # padding 19 % -> 4.5 % of the tokens, training 724 -> 530 s on 2 cores, ΔJ between the two children
    # -0.002 [-0.014, +0.010]. Decoder-only models (TRL's trainer); encoder-decoder runs batch at random.
    group_by_length: bool = True
    # Reference log-probabilities computed once before training instead of at every step, and no second
    # copy of the parent in memory (decoder-only models). Off by default: on the CPU the extra pass
    # (ungrouped, plus hashing the model) cost what epoch 2 saved (543 against 530 s); memory is the gain.
    precompute_ref_log_probs: bool = False

    def validate(self) -> None:
        super().validate()
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not self.beta > 0:
            raise ValueError(f"beta must be a positive number, got {self.beta!r}")
        if self.beta > MAX_BETA:
            raise ValueError(f"beta must be at most {MAX_BETA}, got {self.beta!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {self.loss_type!r}")
        if (
            isinstance(self.rpo_alpha, bool)
            or not isinstance(self.rpo_alpha, (int, float))
            or not math.isfinite(self.rpo_alpha)
            or self.rpo_alpha < 0
        ):
            raise ValueError(f"rpo_alpha must be a number >= 0, got {self.rpo_alpha!r}")
        if family_of(self.parent_dir) == SEQ2SEQ and self.loss_type != "sigmoid":
            raise ValueError(
                f"encoder-decoder models train with loss_type 'sigmoid' only; got {self.loss_type!r}"
            )
        if family_of(self.parent_dir) == SEQ2SEQ and self.precompute_ref_log_probs:
            raise ValueError("precompute_ref_log_probs is TRL's, for decoder-only models; encoder-decoder runs cannot use it")

    def loss_arguments(self) -> dict[str, Any]:
        """``DPOConfig`` loss settings. TRL 1.16 has no ``rpo_alpha`` of its own: RPO is its "sft" loss
        (mean NLL of the chosen tokens) added to the preference loss with weight ``rpo_alpha``."""
        if self.rpo_alpha > 0:
            return {"loss_type": [self.loss_type, "sft"], "loss_weights": [1.0, float(self.rpo_alpha)]}
        return {"loss_type": [self.loss_type]}


def causal_dpo_trainer(cfg: DPORunConfig, records: Sequence[dict[str, Any]], device: DeviceInfo, scratch: str) -> Any:
    """TRL's ``DPOTrainer`` for a decoder-only parent, batching pairs of like length when asked."""
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = load_model_and_tokenizer(cfg.parent_dir)
    # With LoRA the reference is the base with the adapter disabled; with precomputed reference
    # log-probabilities it is the untrained policy itself, read once; otherwise a frozen copy.
    needs_copy = not (cfg.use_lora or cfg.precompute_ref_log_probs)
    reference = load_model_and_tokenizer(cfg.parent_dir)[0] if needs_copy else None
    args = DPOConfig(
        **common_training_arguments(cfg, device, scratch),
        beta=cfg.beta,
        precompute_ref_log_probs=cfg.precompute_ref_log_probs,
        **cfg.loss_arguments(),
    )
    dataset = build_dpo_dataset(records, tokenizer)
    trainer_class = length_grouped(DPOTrainer) if cfg.group_by_length else DPOTrainer
    return trainer_class(ref_model=reference, **trainer_inputs(cfg, model, args, dataset, tokenizer))


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
    cfg.validate()
    validate_dpo_records(records)
    records = list(records)

    def make_trainer(device: DeviceInfo, scratch: str) -> Any:
        if family_of(cfg.parent_dir) == SEQ2SEQ:
            from .seq2seq import dpo_trainer

            return dpo_trainer(cfg, records, device, scratch)
        return causal_dpo_trainer(cfg, records, device, scratch)

    callbacks = dict(on_progress=on_progress, should_cancel=should_cancel)
    return train_and_save(kind="dpo", cfg=cfg, records=records, make_trainer=make_trainer, meta=meta, **callbacks)
