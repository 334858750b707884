"""Training data: hashing, JSONL snapshots, validation messages and the TRL dataset format."""
from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from training.ml.data import (
    build_dpo_dataset,
    build_sft_dataset,
    read_jsonl,
    snapshot_hash,
    validate_dpo_records,
    validate_sft_records,
    write_jsonl,
)
from training.ml.prompting import clean_completion, render_prompt


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint: Path):
    return AutoTokenizer.from_pretrained(str(tiny_checkpoint))


def test_snapshot_hash_ignores_key_order_but_not_record_order() -> None:
    a, b = {"prompt": "x", "completion": "y"}, {"prompt": "z", "completion": "w"}
    assert snapshot_hash([a, b]) == snapshot_hash([{"completion": "y", "prompt": "x"}, b])
    assert snapshot_hash([a, b]) != snapshot_hash([b, a])
    assert snapshot_hash([a]) != snapshot_hash([{"prompt": "x", "completion": "y "}])
    assert len(snapshot_hash([])) == 64


def test_jsonl_round_trip_keeps_records_and_hash(tmp_path: Path) -> None:
    records = [{"prompt": "héllo ✓", "completion": "line\nbreak"}, {"prompt": "b", "completion": "c"}]
    write_jsonl(tmp_path / "data.jsonl", records)
    assert read_jsonl(tmp_path / "data.jsonl") == records
    assert snapshot_hash(read_jsonl(tmp_path / "data.jsonl")) == snapshot_hash(records)


def test_empty_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^SFT data is empty: at least one record is needed$"):
        validate_sft_records([])
    with pytest.raises(ValueError, match=r"^DPO data is empty: at least one record is needed$"):
        validate_dpo_records([])


@pytest.mark.parametrize(
    "record, message",
    [
        ({"completion": "fine"}, "SFT record 1: field 'prompt' is missing or blank"),
        ({"prompt": "rude", "completion": "   "}, "SFT record 1: field 'completion' is missing or blank"),
        ({"prompt": "rude", "completion": None}, "SFT record 1: field 'completion' is missing or blank"),
    ],
)
def test_sft_record_fields_are_checked(record: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        validate_sft_records([{"prompt": "ok", "completion": "ok"}, record])
    assert str(error.value) == message


def test_dpo_record_fields_are_checked() -> None:
    with pytest.raises(ValueError) as error:
        validate_dpo_records([{"prompt": "rude", "chosen": "nice"}])
    assert str(error.value) == "DPO record 0: field 'rejected' is missing or blank"
    with pytest.raises(ValueError) as error:
        validate_dpo_records([{"prompt": "rude", "chosen": "same ", "rejected": "same"}])
    assert str(error.value) == "DPO record 0: 'chosen' and 'rejected' are identical"


def test_sft_dataset_uses_the_shared_prompt_and_ends_with_one_eos(tokenizer) -> None:
    dataset = build_sft_dataset([{"prompt": " shut up you fool ", "completion": " please be quiet "}], tokenizer)
    row = dataset[0]
    assert row["prompt"] == render_prompt(tokenizer, "shut up you fool")
    assert row["completion"] == "please be quiet" + tokenizer.eos_token
    ids = tokenizer(row["prompt"] + row["completion"], add_special_tokens=False)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id and ids[-2] != tokenizer.eos_token_id


def test_dpo_dataset_has_trl_preference_columns(tokenizer) -> None:
    record = {"prompt": "shut up you fool", "chosen": "please be quiet", "rejected": "shut up"}
    dataset = build_dpo_dataset([record], tokenizer)
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
    assert dataset[0]["chosen"] == "please be quiet" + tokenizer.eos_token
    assert dataset[0]["rejected"] == "shut up" + tokenizer.eos_token


def test_completion_keeps_first_line_and_drops_control_characters() -> None:
    # A byte-level tokenizer can decode to NUL, which PostgreSQL refuses to store in a text column.
    assert clean_completion("  Please be kind.\x00\nand more rambling") == "Please be kind."
    assert clean_completion("Fine<|im_end|>junk") == "Fine"
    assert clean_completion("\x00\x07") == ""
