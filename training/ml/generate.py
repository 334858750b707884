"""Candidate generation: sampled rewrites for annotation, greedy rewrites for evaluation.

A ``Generator`` holds one loaded checkpoint; ``get_generator`` keeps one per process so a worker
loads the model once and reloads only when asked for another checkpoint directory.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .device import pick_device
from .prompting import clean_completion, render_prompt


@dataclass(frozen=True)
class DecodingConfig:
    """How candidates are sampled; stored with every candidate as its provenance."""

    num_candidates: int = 3
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 48

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SampledRewrite:
    text: str
    seed: int
    index: int  # position within the sampled batch, so (seed, index) reproduces it
    seconds: float


class Generator:
    """A loaded checkpoint that rewrites toxic sentences."""

    def __init__(self, model_dir: str | Path, *, device: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = str(model_dir)
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=self.device.dtype)
        self.model.to(self.device.device).eval()

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        prompts = [render_prompt(self.tokenizer, t) for t in texts]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device.device) for k, v in batch.items()}

    def _decode(self, output: torch.Tensor, prompt_length: int) -> list[str]:
        return [
            clean_completion(self.tokenizer.decode(row[prompt_length:], skip_special_tokens=True)) for row in output
        ]

    @torch.inference_mode()
    def sample(self, toxic: str, config: DecodingConfig, *, seed: int) -> list[SampledRewrite]:
        """``config.num_candidates`` sampled rewrites of ``toxic``; the same seed gives the same texts."""
        batch = self._encode([toxic])
        torch.manual_seed(seed)
        started = time.perf_counter()
        output = self.model.generate(
            **batch,
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            num_return_sequences=config.num_candidates,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        seconds = (time.perf_counter() - started) / config.num_candidates
        texts = self._decode(output, batch["input_ids"].shape[1])
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=seconds) for i, t in enumerate(texts)]

    @torch.inference_mode()
    def greedy(self, toxics: list[str], *, max_new_tokens: int = 48, batch_size: int = 16) -> list[str]:
        """Deterministic rewrites (greedy decoding), for reproducible evaluation."""
        rewrites: list[str] = []
        for start in range(0, len(toxics), batch_size):
            batch = self._encode(toxics[start : start + batch_size])
            output = self.model.generate(
                **batch, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id
            )
            rewrites.extend(self._decode(output, batch["input_ids"].shape[1]))
        return rewrites


_cache: dict[str, Generator] = {}
_lock = threading.Lock()


def get_generator(model_dir: str | Path) -> Generator:
    """The process-wide generator for ``model_dir``; switching directories frees the old model."""
    key = str(Path(model_dir).resolve())
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = Generator(key)
        return _cache[key]
