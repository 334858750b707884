"""What SFT and DPO runs share: results, progress reports, cancellation, and the train-then-save frame.

``train_and_save`` owns the lifecycle every run follows: seed, train in a scratch directory that is
always removed, then write the final model, tokenizer, ``data.jsonl`` and ``version.json``
atomically into ``output_dir``. A failed or cancelled run leaves nothing behind.
"""
from __future__ import annotations

import gc
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from .checkpoints import atomic_directory, is_checkpoint, write_version_file
from .data import snapshot_hash, write_jsonl
from .device import DeviceInfo, pick_device
from .families import auto_model_class, family_of, peft_task_type
from .progress import CancelFn, ProgressFn, ProgressUpdate  # noqa: F401  (re-exported for callers)

DATA_FILE = "data.jsonl"
SCRATCH_PREFIX = "detox-trainer-"


class TrainingCancelled(Exception):
    """``should_cancel()`` returned True; the run stopped and saved nothing."""


@dataclass
class RunResult:
    output_dir: str
    metrics: dict[str, float]
    steps: int
    total_steps: int
    device: str
    seconds: float
    log_history: list[dict[str, Any]]
    data_hash: str




@dataclass
class RunConfig:
    """Settings every training run shares; ``SFTRunConfig`` and ``DPORunConfig`` add their own."""

    parent_dir: str | Path  # the checkpoint training starts from (and DPO's reference model)
    output_dir: str | Path  # where the new checkpoint appears; must not exist yet
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs; handy for smoke runs and benchmarks
    batch_size: int = 8
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE, or DEFAULT_LORA_LEARNING_RATE with LoRA
    max_length: int = 128  # prompt + answer tokens; the template is ~25 tokens, ParaDetox rows are short
    use_lora: bool = False  # full fine-tuning is cheap at 135M; LoRA adapters are merged on save
    lora_r: int = 16
    lora_alpha: int = 32
    seed: int = 42
    logging_steps: int = 10
    DEFAULT_LEARNING_RATE: ClassVar[float] = 5e-5
    # Adapters start at zero and touch few weights, so LoRA needs a larger step than full fine-tuning.
    DEFAULT_LORA_LEARNING_RATE: ClassVar[float] = 5e-4
    # Upper bounds: far above any useful value for a 135M model, low enough that a typo (epochs=1000,
    # batch_size=10**6) is refused at once instead of running out of memory or for weeks.
    MAXIMA: ClassVar[dict[str, float]] = {
        "epochs": 100,
        "max_steps": 1_000_000,
        "batch_size": 1024,
        "learning_rate": 1e-2,
        "max_length": 4096,
        "lora_r": 512,
        "lora_alpha": 4096,
        "logging_steps": 100_000,
    }
    SEED_LIMIT: ClassVar[int] = 2**32  # numpy/torch seeds are unsigned 32-bit

    def __post_init__(self) -> None:
        if self.learning_rate is None:
            self.learning_rate = self.DEFAULT_LORA_LEARNING_RATE if self.use_lora else self.DEFAULT_LEARNING_RATE

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "max_length": self.max_length,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "logging_steps": self.logging_steps,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        for name in ("batch_size", "max_length", "lora_r", "logging_steps"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if not isinstance(self.max_steps, int) or isinstance(self.max_steps, bool) or not (
            self.max_steps == -1 or self.max_steps > 0
        ):
            raise ValueError(
                f"max_steps must be -1 (train for `epochs`) or a positive whole number, got {self.max_steps!r}"
            )
        for name, maximum in self.MAXIMA.items():
            if getattr(self, name) > maximum:
                raise ValueError(f"{name} must be at most {maximum}, got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be a whole number, got {self.seed!r}")
        if not 0 <= self.seed < self.SEED_LIMIT:
            raise ValueError(f"seed must be between 0 and 2**32 - 1, got {self.seed!r}")
        for switch in (f.name for f in fields(self) if f.type in (bool, "bool")):  # every on/off setting of the run kind
            if not isinstance(getattr(self, switch), bool):
                raise ValueError(f"{switch} must be true or false, got {getattr(self, switch)!r}")
        if not is_checkpoint(Path(self.parent_dir)):
            raise ValueError(f"parent_dir is not a checkpoint directory: {self.parent_dir}")
        if Path(self.output_dir).exists():
            raise ValueError(f"output_dir already exists: {self.output_dir}")


def common_training_arguments(cfg: RunConfig, device: DeviceInfo, scratch: str) -> dict[str, Any]:
    """``TrainingArguments`` shared by SFT and DPO: scratch output, no checkpoints, no reporting."""
    return {
        "output_dir": scratch,
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "max_length": cfg.max_length,
        "logging_steps": cfg.logging_steps,
        "logging_first_step": True,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        # TRL defaults bf16 to True even on CPU; take the precision from the device helper instead.
        "bf16": device.bf16,
        "fp16": device.fp16,
        "use_cpu": device.device == "cpu",
        # Small models and short sequences: recomputing activations only costs time (TRL defaults it on).
        "activation_checkpointing": False,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def lora_config(cfg: RunConfig) -> Any:
    """A LoRA adapter on every linear layer; merged into the weights before saving."""
    from peft import LoraConfig

    task_type = peft_task_type(family_of(cfg.parent_dir))
    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear", task_type=task_type
    )


def trainer_inputs(cfg: RunConfig, model: Any, args: Any, dataset: Any, tokenizer: Any) -> dict[str, Any]:
    """The keyword arguments TRL's SFT and DPO trainers share (LoRA adapter when ``cfg.use_lora``)."""
    return dict(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(cfg) if cfg.use_lora else None,
    )


def load_model_and_tokenizer(model_dir: str | Path) -> tuple[Any, Any]:
    """Float32 weights (mixed precision on GPU comes from the trainer flags) and a tokenizer with a pad token.
    The model class follows the checkpoint's family (causal or seq2seq)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = auto_model_class(family_of(model_dir)).from_pretrained(str(model_dir), dtype=torch.float32)
    return model, tokenizer


# Logged values worth keeping from the last log entry: the loss, SFT's token accuracy, DPO's rewards.
FINAL_METRIC_PREFIXES = ("loss", "mean_token_accuracy", "rewards/", "logps/")
# DPO's drift signals, kept from the first and the last log: a round where the chosen answers' log-probability
# falls along with the rejected ones' moves mass to texts nobody chose (e.g. back towards copying the input),
# however much the margin grows.
TRACKED_DPO_LOGS = ("logps/chosen", "logps/rejected", "rewards/margins")
SIDES = ("chosen", "rejected")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarize_metrics(train_metrics: dict[str, Any], log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The trainer's end-of-run metrics (``train_loss`` is the run's mean) plus ``final_*`` last-logged values.

    For DPO also ``first_*`` and ``change_*`` of the log-probabilities of chosen and rejected answers and
    of the reward margin (first and last logged batches: different pairs, and with length-grouped batches
    of different lengths too), ``late_rewards/chosen`` and ``late_rewards/rejected`` (the mean over the
    last quarter of the logs), and ``both_logps_dropped``: 1.0 when both late rewards are negative. A
    reward is beta times the policy's log-probability less the reference's on the same pairs, so a
    negative one means that side's log-probability fell during training whatever the batch order.
    """
    metrics = {k: float(v) for k, v in train_metrics.items() if _finite(v)}
    logged = [entry for entry in log_history if "loss" in entry]
    if logged:
        for key, value in logged[-1].items():
            if key.startswith(FINAL_METRIC_PREFIXES) and _finite(value):
                metrics[f"final_{key}"] = float(value)
    for key in TRACKED_DPO_LOGS:
        values = [float(entry[key]) for entry in logged if _finite(entry.get(key))]
        if values:
            metrics[f"first_{key}"], metrics[f"final_{key}"] = values[0], values[-1]
            metrics[f"change_{key}"] = values[-1] - values[0]
    rewards = {side: [float(e[f"rewards/{side}"]) for e in logged if _finite(e.get(f"rewards/{side}"))] for side in SIDES}
    if all(rewards.values()):
        for side, values in rewards.items():
            late = values[-max(1, len(values) // 4) :]
            metrics[f"late_rewards/{side}"] = sum(late) / len(late)
        dropped = all(metrics[f"late_rewards/{side}"] < 0 for side in SIDES)
        metrics["both_logps_dropped"] = 1.0 if dropped else 0.0
    return metrics


def hyperparameters(cfg: RunConfig) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}


def _final_model(trainer: Any) -> Any:
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # a PEFT model: fold LoRA in so the checkpoint is a plain model
        model = model.merge_and_unload()
    return model


def train_and_save(
    *,
    kind: str,
    cfg: RunConfig,
    records: Sequence[dict[str, Any]],
    make_trainer: Callable[[DeviceInfo, str], Any],
    meta: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> RunResult:
    """Train with ``make_trainer(device, scratch_dir)`` and save the result atomically at ``cfg.output_dir``.

    ``cfg`` and ``records`` must already be validated. Raises ``TrainingCancelled`` when
    ``should_cancel()`` turns True (checked before loading and after every step); then, as on any
    error, ``output_dir`` is not created and the scratch directory is gone.
    """
    from transformers import set_seed

    output_dir = Path(cfg.output_dir)
    if should_cancel is not None and should_cancel():
        raise TrainingCancelled(f"{kind} run cancelled before it started")

    device = pick_device()
    set_seed(cfg.seed)
    started = time.perf_counter()
    from transformers.trainer_callback import PrinterCallback

    from .callbacks import ProgressCallback

    callback = ProgressCallback(on_progress, should_cancel)
    data_hash = snapshot_hash(records)
    trainer = None
    try:
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as scratch:
            trainer = make_trainer(device, scratch)
            trainer.remove_callback(PrinterCallback)  # progress goes to on_progress, not stdout
            trainer.add_callback(callback)
            output = trainer.train()
            if callback.cancelled:
                raise TrainingCancelled(f"{kind} run cancelled at step {trainer.state.global_step}")
            log_history = list(trainer.state.log_history)
            metrics = summarize_metrics(output.metrics, log_history)
            seconds = time.perf_counter() - started
            steps, total_steps = trainer.state.global_step, trainer.state.max_steps
            version_meta = {
                "parent": str(cfg.parent_dir),
                **(meta or {}),
                "kind": kind,
                "family": family_of(cfg.parent_dir),
                "hyperparameters": hyperparameters(cfg),
                "metrics": metrics,
                "data_hash": data_hash,
                "num_records": len(records),
                "device": device.label,
                "steps": steps,
                "seconds": round(seconds, 3),  # loading and training, before saving
            }
            with atomic_directory(output_dir) as tmp:
                _final_model(trainer).save_pretrained(tmp, safe_serialization=True)
                trainer.processing_class.save_pretrained(tmp)
                write_jsonl(tmp / DATA_FILE, records)
                write_version_file(tmp, version_meta)
    finally:
        del trainer
        gc.collect()
        _empty_device_cache()
    return RunResult(
        output_dir=str(output_dir),
        metrics=metrics,
        steps=steps,
        total_steps=total_steps,
        device=device.label,
        seconds=time.perf_counter() - started,  # loading, training and saving
        log_history=log_history,
        data_hash=data_hash,
    )


def _empty_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
