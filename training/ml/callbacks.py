"""The trainer callback that turns Hugging Face trainer events into ``ProgressUpdate`` reports and
stops training when cancel is requested. Imported only where a run trains (it needs transformers)."""
from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from .progress import CancelFn, ProgressFn, ProgressUpdate


class ProgressCallback(TrainerCallback):
    """Reports progress after every step and every log, and stops training when asked to cancel."""

    def __init__(self, on_progress: ProgressFn | None = None, should_cancel: CancelFn | None = None) -> None:
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.cancelled = False
        self.started = time.perf_counter()
        self.last_loss: float | None = None

    def _report(self, state: Any, logs: dict[str, float] | None = None) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self.started
        step, total = state.global_step, state.max_steps
        eta = elapsed / step * max(total - step, 0) if step else None
        self.on_progress(
            ProgressUpdate(
                step=step,
                total_steps=total,
                loss=self.last_loss,
                epoch=float(state.epoch or 0.0),
                elapsed_s=elapsed,
                eta_s=eta,
                logs=dict(logs or {}),
            )
        )

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.should_cancel is not None and self.should_cancel():
            self.cancelled = True
            control.should_training_stop = True
        self._report(state)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
        self._report(state, logs)
