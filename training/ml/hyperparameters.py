"""The hyperparameters staff may set on a run, read off ``SFTRunConfig`` and ``DPORunConfig``.

The start-run form, ``manage.py train`` and the API describe the same settings with the same
defaults because all of them are derived here from the config dataclasses, never typed twice.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from .dpo import LOSS_TYPES, DPORunConfig
from .runs import RunConfig
from .sft import SFTRunConfig

CONFIGS: dict[str, type[RunConfig]] = {"sft": SFTRunConfig, "dpo": DPORunConfig}
# Set by the platform, or internals a user has no reason to change.
NOT_TUNABLE = {"parent_dir", "output_dir", "logging_steps", "lora_r", "lora_alpha"}
HELP = {
    "epochs": "passes over the data",
    "max_steps": "-1 = train for `epochs`; > 0 stops after this many optimizer steps",
    "batch_size": "rows per optimizer step",
    "learning_rate": "peak learning rate",
    "max_length": "prompt + answer tokens per row",
    "subset_size": "train on a seeded sample of this many rows (e.g. 800 for the quick CPU path)",
    "group_by_length": "batch rows of like length together (less padding, faster on a CPU)",
    "beta": "strength of the pull towards the parent (the reference model)",
    "loss_type": "TRL's preference loss",
    "precompute_ref_log_probs": "compute the reference model's log-probabilities once before training (no second model in memory)",
    "rpo_alpha": "weight of an SFT (NLL) term on the chosen answers, as in RPO; 0 = plain DPO",
    "use_lora": "train a LoRA adapter, merged into the weights on save",
    "seed": "seeds data order and initialisation",
}
CHOICES = {"loss_type": LOSS_TYPES}


@dataclass(frozen=True)
class Hyperparameter:
    name: str
    type: type  # int, float, bool or str
    kinds: tuple[str, ...]  # the run kinds that take it
    defaults: dict[str, Any]  # per kind
    help: str
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """The help line with the defaults, e.g. "passes over the data (SFT 1, DPO 2)"."""
        return f"{self.help} ({self.default_text()})"

    def default_text(self) -> str:
        if self.name == "learning_rate":
            rates = ", ".join(f"{k.upper()} {CONFIGS[k].DEFAULT_LEARNING_RATE:g}" for k in self.kinds)
            lora = ", ".join(f"{k.upper()} {CONFIGS[k].DEFAULT_LORA_LEARNING_RATE:g}" for k in self.kinds)
            return f"{rates}; with LoRA {lora}"
        values = {_show(v) for v in self.defaults.values()}
        if len(values) == 1 and len(self.kinds) == len(CONFIGS):
            return f"default {values.pop()}"
        return ", ".join(f"{kind.upper()} {_show(value)}" for kind, value in self.defaults.items())


def _show(value: Any) -> str:
    return "none" if value is None else "off" if value is False else "on" if value is True else f"{value:g}" if isinstance(value, float) else str(value)


def _base_type(annotation: Any) -> type:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def tunable_hyperparameters() -> list[Hyperparameter]:
    """Every user-settable field of the run configs, in declaration order, shared fields first."""
    found: dict[str, Hyperparameter] = {}
    for kind, config in CONFIGS.items():
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            if f.name in NOT_TUNABLE:
                continue
            default = None if f.default is dataclasses.MISSING else f.default
            known = found.get(f.name)
            found[f.name] = Hyperparameter(
                name=f.name,
                type=_base_type(hints[f.name]),
                kinds=(*known.kinds, kind) if known else (kind,),
                defaults={**(known.defaults if known else {}), kind: default},
                help=HELP.get(f.name, f.name.replace("_", " ")),
                choices=CHOICES.get(f.name, ()),
            )
    return list(found.values())


# The first SFT of a fresh platform (README, "quick CPU path"; bench/quick_loop.sh): on a CPU a seeded
# sample of 800 references for one epoch in batches of 8 (minutes, not hours); on a GPU all of them.
FIRST_SFT_ON_CPU: dict[str, Any] = {"subset_size": 800, "epochs": 1.0, "batch_size": 8}
FIRST_SFT_ON_GPU: dict[str, Any] = {"epochs": 1.0, "batch_size": 8}


def first_sft_hyperparameters(*, on_gpu: bool) -> dict[str, Any]:
    """The first SFT's settings for the device the training worker found."""
    return dict(FIRST_SFT_ON_GPU if on_gpu else FIRST_SFT_ON_CPU)
