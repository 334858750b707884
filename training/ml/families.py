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


def family_of_config(config: Any) -> str:
    """The family of a ``transformers`` config object (or its ``config.json`` as a dict)."""
    value = config.get("is_encoder_decoder") if isinstance(config, dict) else getattr(config, "is_encoder_decoder", False)
    return SEQ2SEQ if value else CAUSAL


def family_of(model_dir: str | Path) -> str:
    """The family of the checkpoint at ``model_dir``; reads JSON only (no torch), so the web process may call it."""
    path = Path(model_dir) / "config.json"
    if not path.exists():
        return CAUSAL
    return family_of_config(json.loads(path.read_text()))


def auto_model_class(family: str) -> Any:
    """The ``transformers`` auto class that loads a checkpoint of ``family``."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if family == SEQ2SEQ else AutoModelForCausalLM


def peft_task_type(family: str) -> str:
    return "SEQ_2_SEQ_LM" if family == SEQ2SEQ else "CAUSAL_LM"
