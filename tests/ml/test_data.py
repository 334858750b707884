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


def test_echo_of_input_is_the_same_words_or_nearly_the_same_characters() -> None:
    from training.ml.data import ECHO_CHAR_RATIO, is_echo_of_input

    assert ECHO_CHAR_RATIO == 0.99
    assert is_echo_of_input("you are a stupid idiot .", "You are a stupid idiot!")
    assert is_echo_of_input("shut up you fool", "ok, shut up you fool")  # the whole input inside
    long = "when a war like that gets started it gets a whole lot worse before it gets any better"
    assert is_echo_of_input(long, long.replace("better", "bettr"))  # a one-letter change
    # Deleting the swear word is the job, not an echo, even when most characters stay.
    assert not is_echo_of_input(long.replace("started it", "started shit"), long)
    assert not is_echo_of_input("you are a stupid idiot", "you are wrong")


def test_a_one_word_rewrite_of_a_sentence_is_a_fragment_but_of_a_short_insult_it_may_be_fine() -> None:
    from training.ml.data import is_fragment

    assert is_fragment("you are a stupid idiot number 3", "*laughs*")
    assert not is_fragment("you are a stupid idiot number 3", "You are wrong.")
    assert not is_fragment("shut up", "Quiet.")


def test_cleaning_counts_what_it_drops_and_skips_a_missing_classifier(monkeypatch) -> None:
    from training.ml import data

    records = [
        {"prompt": "you idiot", "completion": "you idiot"},
        {"prompt": "you moron", "completion": "you dumb moron"},
        {"prompt": "you moron", "completion": "you are wrong"},
    ]

    def toxicity(texts):
        return [0.9 if "dumb" in t else 0.1 for t in texts]

    kept, counts = data.drop_echoes(records)
    assert len(kept) == 2 and counts == {"references": 3, "dropped_echo": 1}
    clean, counts = data.drop_toxic(kept, toxicity=toxicity)
    assert [r["completion"] for r in clean] == ["you are wrong"]
    assert counts == {"dropped_toxic": 1, "toxicity_filter": "custom", "toxicity_threshold": 0.5}
    monkeypatch.setattr(data, "load_cleaning_classifier", lambda spec: (None, "unavailable (not installed)"))
    clean, counts = data.drop_toxic(kept)
    assert clean == kept and counts == {"dropped_toxic": 0, "toxicity_filter": "unavailable (not installed)"}


def test_cleaning_uses_the_classifier_it_is_given_and_falls_back_to_profanity_check(tmp_path) -> None:
    from training.ml.data import drop_toxic, load_cleaning_classifier

    records = [{"prompt": "shut up you fool", "completion": c} for c in ("please be quiet", "shut the fuck up")]
    kept, counts = drop_toxic(records, classifier="profanity-check")
    assert [r["completion"] for r in kept] == ["please be quiet"]
    assert counts == {"dropped_toxic": 1, "toxicity_filter": "profanity-check", "toxicity_threshold": 0.5}
    missing = tmp_path / "no-model-here"
    missing.mkdir()
    classifier, name = load_cleaning_classifier(str(missing))
    assert classifier.name == "profanity-check" and name.startswith(f"profanity-check ({missing}: ")


def test_reconcile_preferences_majority_wins_and_ties_drop() -> None:
    from training.ml.data import reconcile_preferences

    def pair(n, chosen, rejected, annotator, prompt="p"):
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "pair_id": n, "annotator": annotator}

    records = [
        pair(1, "be nice", "go away", "ann"),
        pair(2, "Be nice.", "go away", "bob"),  # duplicate after normalising
        pair(3, "go away", "be nice", "cat"),  # outvoted
        pair(4, "be nice", "go away", "ann"),  # the same annotator again: still one vote
        pair(5, "hi", "bye", "ann", prompt="q"),
        pair(6, "bye", "hi", "bob", prompt="q"),  # 1:1, dropped
        pair(7, "ok", "OK!", "ann", prompt="q"),  # no preference
    ]
    kept, counts = reconcile_preferences(records)
    assert kept == [{"prompt": "p", "chosen": "be nice", "rejected": "go away", "pair_id": 1, "pair_ids": [1, 2, 4]}]
    assert counts == {"pairs": 7, "kept": 1, "duplicates": 2, "outvoted": 1, "conflicts_dropped": 2,
                      "identical_dropped": 1}
