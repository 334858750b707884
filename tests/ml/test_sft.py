"""SFT runs on the tiny model: a checkpoint that learned something, described by its version.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.ml.data import read_jsonl, snapshot_hash
from training.ml.dpo import DPORunConfig
from training.ml.generate import Generator
from training.ml.runs import ProgressUpdate, TrainingCancelled
from training.ml.sft import SFTRunConfig, run_sft

from .helpers import leftovers, weights_changed


def config(parent: Path, store: Path, **overrides) -> SFTRunConfig:
    settings = {"epochs": 2.0, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1}
    return SFTRunConfig(parent_dir=parent, output_dir=store / "sft-1", **(settings | overrides))


def test_sft_run_saves_a_trained_self_describing_checkpoint(tiny_checkpoint, store, private_tempdir, sft_records):
    updates: list[ProgressUpdate] = []
    meta = {"name": "sft-1", "parent": "base"}
    result = run_sft(config(tiny_checkpoint, store), sft_records, meta=meta, on_progress=updates.append)

    output = Path(result.output_dir)
    assert output == store / "sft-1"
    assert result.steps == result.total_steps == 6
    assert any("loss" in entry for entry in result.log_history)
    assert result.metrics["train_loss"] > 0 and "final_loss" in result.metrics
    assert result.device.startswith("cpu (float32")
    assert weights_changed(tiny_checkpoint, output)

    version = json.loads((output / "version.json").read_text())
    assert version["kind"] == "sft"
    assert version["name"] == "sft-1" and version["parent"] == "base"
    assert version["hyperparameters"]["learning_rate"] == 1e-3
    assert version["hyperparameters"]["parent_dir"] == str(tiny_checkpoint)
    assert version["data_hash"] == result.data_hash == snapshot_hash(sft_records)
    assert version["device"].startswith("cpu (float32")
    assert version["metrics"]["final_loss"] == result.metrics["final_loss"]
    assert "trl" in version["library_versions"]
    assert read_jsonl(output / "data.jsonl") == sft_records

    steps = [u.step for u in updates]
    assert steps == sorted(steps) and steps[-1] == 6
    assert any(u.loss is not None and u.logs for u in updates)
    assert updates[-1].total_steps == 6 and updates[-1].eta_s == 0

    assert Generator(output).greedy(["shut up you fool"], max_new_tokens=4)  # loads and generates
    assert leftovers(store, private_tempdir) == []


def test_subset_size_trains_on_a_seeded_sample(tiny_checkpoint, store, private_tempdir, sft_records):
    result = run_sft(config(tiny_checkpoint, store, subset_size=5, max_steps=1), sft_records)
    saved = read_jsonl(Path(result.output_dir) / "data.jsonl")
    assert len(saved) == 5 and all(record in sft_records for record in saved)
    assert result.data_hash == snapshot_hash(saved)


@pytest.mark.parametrize("grouped", [True, False])
def test_sft_batches_rows_of_like_length_unless_turned_off(tiny_checkpoint, store, private_tempdir, sft_records, grouped):
    overrides = {} if grouped else {"group_by_length": False}  # on by default: less padding for the CPU to multiply
    result = run_sft(config(tiny_checkpoint, store, max_steps=2, **overrides), sft_records)
    output = Path(result.output_dir)
    assert json.loads((output / "version.json").read_text())["hyperparameters"]["group_by_length"] is grouped
    assert result.steps == 2 and weights_changed(tiny_checkpoint, output)


def test_lora_run_is_saved_merged_as_a_plain_model(tiny_checkpoint, store, private_tempdir, sft_records):
    result = run_sft(config(tiny_checkpoint, store, use_lora=True, max_steps=2), sft_records)
    output = Path(result.output_dir)
    assert not (output / "adapter_config.json").exists()
    assert weights_changed(tiny_checkpoint, output)


def test_cancel_stops_the_run_and_leaves_nothing(tiny_checkpoint, store, private_tempdir, sft_records):
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3  # once before loading, then after steps 1 and 2

    with pytest.raises(TrainingCancelled, match="sft run cancelled at step 2"):
        run_sft(config(tiny_checkpoint, store), sft_records, should_cancel=should_cancel)
    assert not (store / "sft-1").exists()
    assert leftovers(store, private_tempdir) == []


def test_cancel_before_start_raises_at_once(tiny_checkpoint, store, private_tempdir, sft_records):
    with pytest.raises(TrainingCancelled, match="sft run cancelled before it started"):
        run_sft(config(tiny_checkpoint, store), sft_records, should_cancel=lambda: True)
    assert list(store.iterdir()) == []


def test_error_mid_training_leaves_no_checkpoint(tiny_checkpoint, store, private_tempdir, sft_records):
    def explode(update: ProgressUpdate) -> None:
        if update.step == 2:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_sft(config(tiny_checkpoint, store), sft_records, on_progress=explode)
    assert not (store / "sft-1").exists()
    assert leftovers(store, private_tempdir) == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"learning_rate": 0.0}, "learning_rate must be a positive number, got 0.0"),
        ({"batch_size": -1}, "batch_size must be a positive number, got -1"),
        ({"batch_size": 2.5}, "batch_size must be a whole number, got 2.5"),
        ({"epochs": 0}, "epochs must be a positive number, got 0"),
        ({"max_steps": 0}, "max_steps must be -1 (train for `epochs`) or a positive whole number, got 0"),
        ({"subset_size": 0}, "subset_size must be a positive whole number or None, got 0"),
    ],
)
def test_invalid_config_is_refused(tiny_checkpoint, store, sft_records, overrides, message):
    with pytest.raises(ValueError) as error:
        run_sft(config(tiny_checkpoint, store, **overrides), sft_records)
    assert str(error.value) == message


def test_lora_defaults_to_a_larger_learning_rate_unless_one_is_given(tiny_checkpoint, store):
    """Adapters barely move at the full fine-tuning rate, so LoRA has a larger default of its own; an explicit rate stays."""
    dirs = {"parent_dir": tiny_checkpoint, "output_dir": store / "out"}
    assert SFTRunConfig(**dirs).learning_rate == 1.5e-4
    assert SFTRunConfig(**dirs, use_lora=True).learning_rate == 5e-4
    assert SFTRunConfig(**dirs, use_lora=True, learning_rate=1e-4).learning_rate == 1e-4
    assert DPORunConfig(**dirs).learning_rate == 2e-5
    assert DPORunConfig(**dirs, use_lora=True).learning_rate == 5e-5


def test_missing_parent_and_existing_output_are_refused(tiny_checkpoint, store, sft_records):
    with pytest.raises(ValueError) as error:
        run_sft(config(store / "nowhere", store), sft_records)
    assert str(error.value) == f"parent_dir is not a checkpoint directory: {store / 'nowhere'}"
    (store / "sft-1").mkdir()
    with pytest.raises(ValueError) as error:
        run_sft(config(tiny_checkpoint, store), sft_records)
    assert str(error.value) == f"output_dir already exists: {store / 'sft-1'}"


def test_empty_data_is_refused(tiny_checkpoint, store):
    with pytest.raises(ValueError, match="^SFT data is empty: at least one record is needed$"):
        run_sft(config(tiny_checkpoint, store), [])
    assert list(store.iterdir()) == []
