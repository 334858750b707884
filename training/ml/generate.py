"""Candidate generation: sampled rewrites for annotation, greedy rewrites for evaluation.

A ``Generator`` holds one loaded checkpoint on one *backend*; ``get_generator`` keeps one per
process so a worker loads the model once and reloads only when asked for another checkpoint
directory or backend.

Backends (the label is stored with every candidate, see ``Generator.provenance``):

* ``hf-fp32``: transformers ``generate`` in float32 -- the reference path.
* ``torch-int8``: the same, with every ``nn.Linear`` (lm_head included) quantized to int8 by
  ``torch.ao.quantization.quantize_dynamic`` (weights int8, activations quantized per call). Fast,
  but it FAILS the quality-parity check (7 % of greedy outputs equal to fp32's, J -0.13; see
  bench/RESULTS.md): kept for experiments, not a default.
* ``ct2-int8``: CTranslate2 with int8 weights. The checkpoint is converted once, lazily, into
  ``<checkpoint>/ct2-int8/`` (written to a temporary sibling, then renamed). When ctranslate2 is
  not installed or the conversion fails, the generator falls back to ``hf-fp32`` with a warning
  and says so in its ``backend`` label.

Encoder-decoder checkpoints (T5, BART) run on every backend: ``ct2-int8`` converts them the same way
and samples with CTranslate2's ``Translator`` instead of its ``Generator``.

The default backend comes from the ``GENERATION_BACKEND`` environment variable, else
``DEFAULT_BACKEND``. Threads: see ``training.ml.device.generation_threads``. Seed
reproducibility: ``GENERATION_REPRODUCIBLE`` (see ``Generator``).

Every backend stops a row as soon as the first line of its answer is complete (or at EOS):
only the first line is kept (``clean_completion``), so decoding further is wasted work. The
result is what ``clean_completion`` would keep from a run to ``max_new_tokens``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from .device import generation_threads, pick_device
from .families import SEQ2SEQ, auto_model_class, family_of, task_prefix
from .prompting import _CONTROL_CHARS, clean_completion, render_prompt

logger = logging.getLogger(__name__)

HF_FP32 = "hf-fp32"
TORCH_INT8 = "torch-int8"
CT2_INT8 = "ct2-int8"
BACKENDS = (HF_FP32, TORCH_INT8, CT2_INT8)
# Fastest backend that passed the quality-parity check of bench/bench_generation.py (bench/RESULTS.md):
# ct2-int8 kept J within noise of hf-fp32; torch-int8 did not.
DEFAULT_BACKEND = CT2_INT8
CT2_DIRNAME = "ct2-int8"


def default_backend() -> str:
    """``GENERATION_BACKEND`` from the environment, else ``DEFAULT_BACKEND``."""
    return os.environ.get("GENERATION_BACKEND") or DEFAULT_BACKEND


@dataclass(frozen=True)
class DecodingConfig:
    """How candidates are sampled; stored with every candidate as its provenance."""

    num_candidates: int = 3
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 48
    # transformers' default, in effect before it was spelled out; a constant (not a field) so the
    # stored ``as_dict()`` keeps its keys. ``Generator.provenance`` records it.
    top_k: ClassVar[int] = 50

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SampledRewrite:
    text: str
    seed: int
    # Position within the prompt's candidates. (seed, index) reproduces the text given the same
    # batch of prompts (``sample_batch`` samples all rows of one call from one seeded stream).
    index: int
    seconds: float  # this candidate's share of the call's wall time
    backend: str = ""


def first_line_complete(generated: str) -> bool:
    """True once ``clean_completion(generated + anything)`` can no longer change: the text (control
    characters removed, leading whitespace ignored) holds a newline after some content."""
    return "\n" in _CONTROL_CHARS.sub("", generated).lstrip()


def newline_token_ids(tokenizer: Any) -> list[int]:
    """Ids of the tokens whose text contains a newline (byte-level BPE has many: "\\n", ".\\n", ...)."""
    vocab_size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(vocab_size)], skip_special_tokens=False)
    return [i for i, text in enumerate(texts) if "\n" in text]


def _stopping_criteria_class() -> type:
    from transformers import StoppingCriteria

    class FirstLineStoppingCriteria(StoppingCriteria):
        """Per-row stop once the generated part holds a complete first line.

        Cheap: only rows whose last token is in ``newline_mask`` are decoded (to skip leading blank
        lines, which ``clean_completion`` strips). transformers pads rows once they are done.
        """

        def __init__(self, tokenizer: Any, prompt_length: int, newline_mask: torch.Tensor) -> None:
            self.tokenizer = tokenizer
            self.prompt_length = prompt_length
            self.newline_mask = newline_mask
            self.done: torch.Tensor | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            if self.done is None:
                self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            last = input_ids[:, -1]
            candidates = self.newline_mask[last.clamp(0, self.newline_mask.numel() - 1)] & ~self.done
            for row in candidates.nonzero().flatten().tolist():
                text = self.tokenizer.decode(input_ids[row, self.prompt_length :], skip_special_tokens=True)
                if first_line_complete(text):
                    self.done[row] = True
            return self.done.clone()

    return FirstLineStoppingCriteria


class Generator:
    """A loaded checkpoint that rewrites toxic sentences, on one backend (``BACKENDS``)."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str | None = None,
        backend: str | None = None,
        reproducible: bool | None = None,
    ) -> None:
        """``backend``: one of ``BACKENDS`` (default ``default_backend()``). ``reproducible`` (default:
        ``GENERATION_REPRODUCIBLE``, on unless set to 0/false): the same seed gives the same samples.
        Only ct2-int8 pays for it (a fresh engine per seeded call, see ``_Ct2Engines``); with it off,
        ct2 samples from one random stream and ``provenance()`` says ``"reproducible": False``."""
        from transformers import AutoTokenizer

        requested = backend or default_backend()
        if requested not in BACKENDS:
            raise ValueError(f"unknown generation backend {requested!r}; choose one of {', '.join(BACKENDS)}")
        self.model_dir = str(model_dir)
        if reproducible is None:
            reproducible = os.environ.get("GENERATION_REPRODUCIBLE", "1").strip().lower() not in ("0", "false", "no")
        self.reproducible = reproducible
        self.device = pick_device(device)
        self.threads = generation_threads()
        self.family = family_of(self.model_dir)
        self.prefix = task_prefix(self.model_dir)  # seq2seq: the prefix the checkpoint declares, if any
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # A decoder continues the prompt, so pad on the left; an encoder reads it whole (padded as in training).
        self.tokenizer.padding_side = "right" if self.family == SEQ2SEQ else "left"
        self._newline_ids = newline_token_ids(self.tokenizer)
        self._newline_set = set(self._newline_ids)
        self._end_ids = sorted(
            {i for i in (self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")) if i is not None}
            - {self.tokenizer.unk_token_id}
        )
        self._ct2_end_ids = sorted(set(self._end_ids) | self._newline_set)
        self.model: Any = None
        self._ct2: Any = None
        if self.device.device != "cpu" and requested != HF_FP32:
            logger.warning("backend %s is CPU-only; using %s on %s", requested, HF_FP32, self.device.device)
            requested = HF_FP32
        if requested == CT2_INT8:
            self._ct2 = self._load_ct2()
            if self._ct2 is None:
                requested = HF_FP32
        if self._ct2 is None:
            self._load_torch(quantize=requested == TORCH_INT8)
        self.backend = requested

    # ------------------------------------------------------------------ loading

    def _load_torch(self, *, quantize: bool) -> None:
        if os.environ.get("GENERATION_THREADS"):
            torch.set_num_threads(self.threads)
        model = auto_model_class(self.family).from_pretrained(self.model_dir, dtype=self.device.dtype)
        model.to(self.device.device).eval()
        if quantize:
            from torch.ao.quantization import quantize_dynamic

            model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        mask = torch.zeros(max(len(self.tokenizer), model.config.vocab_size), dtype=torch.bool)
        mask[self._newline_ids] = True
        self._newline_mask = mask.to(self.device.device)

    def _load_ct2(self) -> Any:
        """CTranslate2 engines for the int8 copy of the checkpoint, or None (logged) when ctranslate2
        is missing or the conversion fails."""
        try:
            import ctranslate2  # noqa: F401
        except ImportError:
            logger.warning("ctranslate2 is not installed; generation falls back to %s", HF_FP32)
            return None
        try:
            return _Ct2Engines(
                ensure_ct2_model(self.model_dir),
                self.threads,
                reproducible=self.reproducible,
                translator=self.family == SEQ2SEQ,
            )
        except Exception as exc:  # noqa: BLE001 - any conversion/load failure means: use the reference path
            logger.warning("CTranslate2 model unavailable for %s (%s); falling back to %s", self.model_dir, exc, HF_FP32)
            return None

    # ------------------------------------------------------------------ public API

    def set_threads(self, threads: int) -> None:
        """Use ``threads`` CPU threads from the next call on (a job's share, ``split_cpu_threads``)."""
        if threads == self.threads:
            return
        self.threads = threads
        if self._ct2 is not None:
            self._ct2.set_threads(threads)
        elif self.device.device == "cpu":
            torch.set_num_threads(threads)

    def provenance(self, config: DecodingConfig) -> dict[str, Any]:
        """What to store with a candidate: the decoding settings plus the backend that produced it."""
        provenance = {**config.as_dict(), "top_k": config.top_k, "backend": self.backend}
        if self.model is not None and self.device.dtype is not torch.float32:
            # hf-fp32 on a GPU runs in the device's half precision (pick_device): say so, not just the name.
            provenance["dtype"] = str(self.device.dtype).removeprefix("torch.")
        if self._ct2 is not None and not self.reproducible:
            provenance["reproducible"] = False  # torch backends are always seed-reproducible
        return provenance

    def sample(self, toxic: str, config: DecodingConfig, *, seed: int) -> list[SampledRewrite]:
        """``config.num_candidates`` sampled rewrites of ``toxic``; the same seed gives the same texts."""
        return self.sample_batch([toxic], config, seed=seed)[0]

    def sample_batch(self, toxics: list[str], config: DecodingConfig, *, seed: int) -> list[list[SampledRewrite]]:
        """For each of ``toxics``, ``config.num_candidates`` sampled rewrites, from ONE batched call
        (len(toxics) x num_candidates rows, left-padded). Deterministic for a seed and the same list."""
        if not toxics:
            return []
        n = config.num_candidates
        started = time.perf_counter()
        if self._ct2 is not None:
            texts = self._ct2_generate(toxics, config, seed=seed)
        else:
            texts = self._hf_generate(toxics, config, seed=seed)
        seconds = (time.perf_counter() - started) / (len(toxics) * n)
        return [
            [
                SampledRewrite(text=texts[p * n + i], seed=seed, index=i, seconds=seconds, backend=self.backend)
                for i in range(n)
            ]
            for p in range(len(toxics))
        ]

    def greedy(self, toxics: list[str], *, max_new_tokens: int = 48, batch_size: int = 16) -> list[str]:
        """Deterministic rewrites (greedy decoding), for reproducible evaluation."""
        if self._ct2 is not None:
            return self._ct2_generate(list(toxics), None, max_new_tokens=max_new_tokens, batch_size=batch_size)
        rewrites: list[str] = []
        for start in range(0, len(toxics), batch_size):
            rewrites.extend(self._hf_generate(toxics[start : start + batch_size], None, max_new_tokens=max_new_tokens))
        return rewrites

    # ------------------------------------------------------------------ transformers backends

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        prompts = [render_prompt(self.tokenizer, t, family=self.family, prefix=self.prefix) for t in texts]
        # T5-style tokenizers end the encoder input with </s> (as in training); chat prompts carry their own markers.
        special = self.family == SEQ2SEQ
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=special)
        return {k: v.to(self.device.device) for k, v in batch.items()}

    def _decode(self, output: torch.Tensor, prompt_length: int) -> list[str]:
        return [
            clean_completion(self.tokenizer.decode(row[prompt_length:], skip_special_tokens=True)) for row in output
        ]

    @torch.inference_mode()
    def _hf_generate(
        self, toxics: list[str], config: DecodingConfig | None, *, seed: int = 0, max_new_tokens: int = 48
    ) -> list[str]:
        """Sampled (``config``; rows grouped by prompt) or greedy (``config`` None) first lines."""
        from transformers import StoppingCriteriaList

        batch = self._encode(toxics)
        # A causal output repeats the prompt; a seq2seq output is the decoder's alone.
        prompt_length = 0 if self.family == SEQ2SEQ else batch["input_ids"].shape[1]
        stop = _stopping_criteria_class()(self.tokenizer, prompt_length, self._newline_mask)
        kwargs: dict[str, Any] = {"do_sample": False, "max_new_tokens": max_new_tokens}
        if config is not None:
            torch.manual_seed(seed)
            kwargs = {
                "do_sample": True,
                "temperature": config.temperature,
                "top_p": config.top_p,
                "top_k": config.top_k,
                "max_new_tokens": config.max_new_tokens,
                "num_return_sequences": config.num_candidates,
            }
        output = self.model.generate(
            **batch,
            **kwargs,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([stop]),
        )
        return self._decode(output, prompt_length)

    # ------------------------------------------------------------------ CTranslate2 backend

    def _ct2_generate(
        self,
        toxics: list[str],
        config: DecodingConfig | None,
        *,
        seed: int = 0,
        max_new_tokens: int = 48,
        batch_size: int = 64,
    ) -> list[str]:
        """First lines from CTranslate2: rows end on EOS or on a token holding a newline; a row that
        stopped on a newline before any content (a leading blank line) is continued from where it
        stopped, so the result equals ``clean_completion`` of a full-length run."""
        if self.family == SEQ2SEQ:
            return self._ct2_translate(toxics, config, seed=seed, max_new_tokens=max_new_tokens, batch_size=batch_size)
        n = config.num_candidates if config is not None else 1
        budget = config.max_new_tokens if config is not None else max_new_tokens
        prompts = [
            self.tokenizer.convert_ids_to_tokens(
                self.tokenizer(render_prompt(self.tokenizer, t), add_special_tokens=False)["input_ids"]
            )
            for t in toxics
        ]
        rows = [list(p) for p in prompts for _ in range(n)]  # prompt tokens of each candidate (continuations)
        generated: list[list[int]] = [[] for _ in rows]
        options = _ct2_sampling_options(config)
        end_ids = set(self._end_ids)
        with self._ct2.engine(seed if config is not None else None) as engine:
            # Round 1: every row, ending on EOS or on any token holding a newline (cheap, in C++).
            # The n candidates of a prompt are n hypotheses of one entry: its prompt is run once.
            results = engine.generate_batch(
                prompts,
                max_batch_size=batch_size,
                max_length=budget,
                end_token=self._ct2_end_ids,
                return_end_token=True,
                include_prompt_in_result=False,
                num_hypotheses=n,
                **options,
            )
            first_round = [list(hyp) for result in results for hyp in result.sequences_ids]
            blank: list[int] = []
            for r, ids in enumerate(first_round):
                generated[r].extend(ids)
                if (
                    ids
                    and ids[-1] in self._newline_set
                    and len(ids) < budget
                    and not first_line_complete(self.tokenizer.decode(ids, skip_special_tokens=True))
                ):
                    blank.append(r)  # stopped on a leading blank line: clean_completion would skip it
            if blank:
                self._ct2_continue(engine, rows, generated, blank, budget, options, end_ids)
        return [clean_completion(self.tokenizer.decode(g, skip_special_tokens=True)) for g in generated]

    def _ct2_translate(
        self, toxics: list[str], config: DecodingConfig | None, *, seed: int, max_new_tokens: int, batch_size: int
    ) -> list[str]:
        """Encoder-decoder rewrites from CTranslate2's ``Translator``: one row per candidate (it samples one
        hypothesis per row), each decoded to EOS or the token budget and cut to its first line."""
        n = config.num_candidates if config is not None else 1
        sources = [
            self.tokenizer.convert_ids_to_tokens(
                self.tokenizer(render_prompt(self.tokenizer, t, family=SEQ2SEQ, prefix=self.prefix))["input_ids"]
            )
            for t in toxics
        ]
        options = _ct2_sampling_options(config)
        with self._ct2.engine(seed if config is not None else None) as engine:
            results = engine.translate_batch(
                [source for source in sources for _ in range(n)],
                max_batch_size=batch_size,
                max_decoding_length=config.max_new_tokens if config is not None else max_new_tokens,
                beam_size=1,
                **options,
            )
        decode, to_ids = self.tokenizer.decode, self.tokenizer.convert_tokens_to_ids
        return [clean_completion(decode(to_ids(result.hypotheses[0]), skip_special_tokens=True)) for result in results]

    def _ct2_continue(
        self,
        engine: Any,
        rows: list[list[str]],
        generated: list[list[int]],
        todo: list[int],
        budget: int,
        options: dict[str, Any],
        end_ids: set[int],
    ) -> None:
        """Round 2 (rare): continue rows that so far wrote only blank lines, token by token, until
        their first line is complete (a per-token callback decides), EOS or the token budget."""
        # The callback must not reference ``self``: CTranslate2 releases it on its worker thread, and
        # if that dropped the last reference to this Generator, the engine would be destroyed by
        # (and join) its own thread, which aborts the process.
        decode, newline_ids = self.tokenizer.decode, self._newline_set
        for left in sorted({budget - len(generated[r]) for r in todo}):
            group = [r for r in todo if budget - len(generated[r]) == left]
            tails: list[list[int]] = [list(generated[r]) for r in group]

            def complete(step: Any, tails: list[list[int]] = tails) -> bool:
                tails[step.batch_id].append(step.token_id)
                if step.token_id not in newline_ids:
                    return False
                return first_line_complete(decode(tails[step.batch_id], skip_special_tokens=True))

            results = engine.generate_batch(
                [rows[r] + self.tokenizer.convert_ids_to_tokens(generated[r]) for r in group],
                max_length=left,
                end_token=sorted(end_ids),
                return_end_token=True,
                include_prompt_in_result=False,
                callback=complete,
                **options,
            )
            for r, result in zip(group, results):
                generated[r].extend(result.sequences_ids[0])


def _ct2_sampling_options(config: DecodingConfig | None) -> dict[str, Any]:
    """CTranslate2's sampling settings for ``config``; greedy (top-1) when it is None."""
    if config is None:
        return {"sampling_topk": 1}
    return {"sampling_topk": config.top_k or 0, "sampling_topp": config.top_p, "sampling_temperature": config.temperature}


_seed_lock = threading.Lock()


def ct2_intra_threads(budget: int) -> int:
    """CTranslate2's intra-op threads for a job allowed ``budget`` threads: ``CT2_INTRA_THREADS`` (default 1;
    0 = the whole budget), never more than the budget.

    On our 2-vCPU machine one thread beat two: 7.4 vs 6.9 items/s and a cold item in 0.32 s vs 0.78 s
    (p50), and two 1-thread workers together supplied 14.2 items/s (bench/RESULTS.md). More cores are
    better spent on more generation workers (``GENERATION_WORKERS``) than on threads inside one.
    """
    setting = int(os.environ.get("CT2_INTRA_THREADS", "1"))
    return max(1, budget if setting <= 0 else min(setting, budget))


class _Ct2Engines:
    """CTranslate2 generators for one converted model, made seed-reproducible.

    CTranslate2's sampler draws from a thread-local random generator of the worker thread, seeded
    from ``ctranslate2.set_random_seed`` the first time that thread samples, and never again
    (OpenNMT/CTranslate2 issue 1757). So every seeded sampling call runs on a *fresh* generator,
    seeded just before its first draw; a spare one is loaded in the background after each call
    (~0.1-0.4 s of CPU, off the caller's path). Greedy decoding draws nothing and reuses the last one.
    """

    def __init__(self, path: Path, threads: int, *, reproducible: bool = True, translator: bool = False) -> None:
        self.path = str(path)
        self.translator = translator  # an encoder-decoder model: ctranslate2.Translator, else ctranslate2.Generator
        self.threads = threads
        self.reproducible = reproducible
        self._current = self._build()
        self._spare: Any = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()
        if reproducible:
            self._load_spare_in_background()

    def set_threads(self, threads: int) -> None:
        """Rebuild the engines with ``threads`` intra-op threads (fixed per engine in CTranslate2)."""
        with self._lock:
            if self._loader is not None:
                self._loader.join()
            self.threads = threads
            self._spare = None
            self._current = self._build()
            if self.reproducible:
                self._load_spare_in_background()

    def _build(self) -> Any:
        import ctranslate2

        engine = ctranslate2.Translator if self.translator else ctranslate2.Generator
        return engine(self.path, device="cpu", compute_type="int8", intra_threads=ct2_intra_threads(self.threads))

    def _load_spare_in_background(self) -> None:
        def load() -> None:
            try:
                self._spare = self._build()
            except Exception:  # noqa: BLE001 - the next call builds it in the foreground
                logger.exception("could not load a spare CTranslate2 generator")

        # Not a daemon: the interpreter waits the ~0.3 s for it at exit; a daemon thread still inside
        # CTranslate2 when Python exits aborts the process ("terminate called without an active exception").
        self._loader = threading.Thread(target=load, name="ct2-spare-loader")
        self._loader.start()

    @contextlib.contextmanager
    def engine(self, seed: int | None) -> Iterator[Any]:
        """The generator to use: the current one for greedy (``seed`` None), a fresh seeded one else."""
        with self._lock:
            if seed is None or not self.reproducible:  # not reproducible: one engine, one random stream
                yield self._current
                return
            import ctranslate2

            if self._loader is not None:
                self._loader.join()
            fresh, self._spare = self._spare or self._build(), None
            with _seed_lock:  # the seed is process-wide until the fresh worker thread draws
                ctranslate2.set_random_seed(seed % 2**32)
                yield fresh
            self._current = fresh
            self._load_spare_in_background()


def ensure_ct2_model(model_dir: str | Path, *, quantization: str = "int8") -> Path:
    """The CTranslate2 copy of ``model_dir`` at ``<model_dir>/ct2-<quantization>/``, converted the first
    time (into a temporary sibling renamed into place, so a crash or a concurrent converter never
    leaves a half-written model)."""
    model_dir = Path(model_dir)
    final = model_dir / f"ct2-{quantization}"
    if (final / "model.bin").exists():
        return final
    from ctranslate2.converters import TransformersConverter

    tmp = model_dir / f".tmp-ct2-{quantization}-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        TransformersConverter(str(model_dir), low_cpu_mem_usage=True).convert(str(tmp), quantization=quantization)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "model.bin").exists():  # not a concurrent converter winning the race
                raise
        logger.info("converted %s to CTranslate2 %s in %.1f s", model_dir, quantization, time.perf_counter() - started)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


_cache: dict[tuple[str, str], Generator] = {}
_lock = threading.Lock()


def get_generator(model_dir: str | Path, backend: str | None = None) -> Generator:
    """The process-wide generator for ``model_dir`` on ``backend`` (default: ``default_backend()``);
    switching directory or backend frees the old model."""
    key = (str(Path(model_dir).resolve()), backend or default_backend())
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = Generator(key[0], backend=key[1])
        _cache[key].set_threads(generation_threads())  # this job's share may differ from the last one's
        return _cache[key]
