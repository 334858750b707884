"""Training data: validation, snapshot hashing, JSONL snapshots and TRL-ready datasets.

Records are plain dicts (``{"prompt", "completion"}`` for SFT, ``{"prompt", "chosen", "rejected"}``
for DPO) holding raw text; the builders wrap the prompt in the shared template and end each answer
with the eos token, so a trained model learns to stop where generation expects it to.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .prompting import render_prompt

SFT_FIELDS = ("prompt", "completion")
DPO_FIELDS = ("prompt", "chosen", "rejected")


def snapshot_hash(records: Sequence[dict[str, Any]]) -> str:
    """sha256 of the records as canonical JSON: key order inside a record is irrelevant, record order counts."""
    canonical = json.dumps(list(records), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _validate(records: Sequence[dict[str, Any]], fields: tuple[str, ...], kind: str) -> None:
    if not records:
        raise ValueError(f"{kind} data is empty: at least one record is needed")
    for index, record in enumerate(records):
        for name in fields:
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{kind} record {index}: field {name!r} is missing or blank")


def validate_sft_records(records: Sequence[dict[str, Any]]) -> None:
    """Raise ``ValueError`` unless every record has non-blank ``prompt`` and ``completion`` strings."""
    _validate(records, SFT_FIELDS, "SFT")


def validate_dpo_records(records: Sequence[dict[str, Any]]) -> None:
    """Raise ``ValueError`` unless every record has non-blank, distinct ``chosen``/``rejected`` answers.

    Identical answers carry no preference signal (the DPO loss is constant), so they are refused.
    """
    _validate(records, DPO_FIELDS, "DPO")
    for index, record in enumerate(records):
        if record["chosen"].strip() == record["rejected"].strip():
            raise ValueError(f"DPO record {index}: 'chosen' and 'rejected' are identical")


def _answer(tokenizer: Any, text: str) -> str:
    # TRL appends eos only when missing, so adding it here never doubles it.
    return text.strip() + tokenizer.eos_token


def sft_rows(records: Sequence[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """Prompt/completion rows in TRL's (non-conversational) prompt-completion format."""
    validate_sft_records(records)
    return [
        {"prompt": render_prompt(tokenizer, r["prompt"]), "completion": _answer(tokenizer, r["completion"])}
        for r in records
    ]


def dpo_rows(records: Sequence[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """Prompt/chosen/rejected rows in TRL's (non-conversational) preference format."""
    validate_dpo_records(records)
    return [
        {
            "prompt": render_prompt(tokenizer, r["prompt"]),
            "chosen": _answer(tokenizer, r["chosen"]),
            "rejected": _answer(tokenizer, r["rejected"]),
        }
        for r in records
    ]


def build_sft_dataset(records: Sequence[dict[str, Any]], tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with ``prompt``/``completion`` columns (loss on the completion only)."""
    from datasets import Dataset

    return Dataset.from_list(sft_rows(records, tokenizer))


def build_dpo_dataset(records: Sequence[dict[str, Any]], tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with ``prompt``/``chosen``/``rejected`` columns."""
    from datasets import Dataset

    return Dataset.from_list(dpo_rows(records, tokenizer))
