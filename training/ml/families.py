"""Model families: decoder-only (causal) and encoder-decoder (T5/BART-style seq2seq) checkpoints.

A checkpoint's family comes from its own ``config.json`` (``is_encoder_decoder``), so nothing needs
registering by hand: each family has its own prompt rendering (``prompting.render_prompt``),
generation (``generate.Generator``), SFT (``sft.run_sft``) and DPO (``dpo.run_dpo``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAUSAL = "causal"
SEQ2SEQ = "seq2seq"
FAMILIES = (CAUSAL, SEQ2SEQ)
# Where a T5-style config declares a task's input prefix (t5-small ships "summarize: " and others there).
TASK = "detoxify"


def family_of_config(config: Any) -> str:
    """The family of a ``transformers`` config object (or its ``config.json`` as a dict)."""
    value = config.get("is_encoder_decoder") if isinstance(config, dict) else getattr(config, "is_encoder_decoder", False)
    return SEQ2SEQ if value else CAUSAL


def _config(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


def family_of(model_dir: str | Path) -> str:
    """The family of the checkpoint at ``model_dir``; reads JSON only (no torch), so the web process may call it."""
    return family_of_config(_config(model_dir))


def task_prefix(model_dir: str | Path) -> str | None:
    """The encoder prefix the checkpoint declares (``task_specific_params.detoxify.prefix``), or None (the default)."""
    params = _config(model_dir).get("task_specific_params") or {}
    prefix = (params.get(TASK) or {}).get("prefix")
    return prefix if isinstance(prefix, str) else None


def declare_task_prefix(config: Any, prefix: str) -> None:
    """Store ``prefix`` in a seq2seq ``config``; every checkpoint trained from it inherits it with the config."""
    config.task_specific_params = {**(getattr(config, "task_specific_params", None) or {}), TASK: {"prefix": prefix}}


def auto_model_class(family: str) -> Any:
    """The ``transformers`` auto class that loads a checkpoint of ``family``."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if family == SEQ2SEQ else AutoModelForCausalLM


def peft_task_type(family: str) -> str:
    return "SEQ_2_SEQ_LM" if family == SEQ2SEQ else "CAUSAL_LM"
