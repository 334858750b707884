"""What a training run reports while it trains, and the callables that receive it (no torch here)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ProgressUpdate:
    step: int
    total_steps: int
    loss: float | None  # the latest logged training loss (None before the first log)
    epoch: float
    elapsed_s: float
    eta_s: float | None  # None until one step has been timed
    logs: dict[str, float] = field(default_factory=dict)  # the trainer's log entry, empty on plain steps

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


ProgressFn = Callable[[ProgressUpdate], None]
CancelFn = Callable[[], bool]
