"""DPO rounds on the tiny model: preferences move the model away from its parent, and only then is it saved."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.ml.data import read_jsonl, snapshot_hash
from training.ml.dpo import DPORunConfig, run_dpo
from training.ml.runs import ProgressUpdate, TrainingCancelled

from .helpers import leftovers, varied_length_pairs, weights_changed


def config(parent: Path, store: Path, **overrides) -> DPORunConfig:
    settings = {"learning_rate": 1e-3, "logging_steps": 1}
    return DPORunConfig(parent_dir=parent, output_dir=store / "dpo-1", **(settings | overrides))


def test_dpo_round_saves_a_checkpoint_that_prefers_chosen(tiny_checkpoint, store, private_tempdir, dpo_records):
    updates: list[ProgressUpdate] = []
    result = run_dpo(config(tiny_checkpoint, store), dpo_records, meta={"round": 1}, on_progress=updates.append)

    output = Path(result.output_dir)
    assert result.steps == result.total_steps == 6  # 12 pairs / batch 4 * 2 epochs
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert losses and losses[-1] < losses[0]  # starts at log(2) and goes down
    assert result.metrics["final_rewards/margins"] > 0
    assert weights_changed(tiny_checkpoint, output)

    version = json.loads((output / "version.json").read_text())
    assert version["kind"] == "dpo" and version["round"] == 1
    assert version["parent"] == str(tiny_checkpoint)
    assert version["hyperparameters"]["beta"] == 0.1
    assert version["data_hash"] == snapshot_hash(dpo_records)
    assert version["device"].startswith("cpu (float32")
    assert read_jsonl(output / "data.jsonl") == dpo_records

    steps = [u.step for u in updates]
    assert steps == sorted(steps) and steps[-1] == 6
    assert leftovers(store, private_tempdir) == []


def test_lora_round_is_saved_merged(tiny_checkpoint, store, private_tempdir, dpo_records):
    result = run_dpo(config(tiny_checkpoint, store, use_lora=True, max_steps=2), dpo_records)
    output = Path(result.output_dir)
    assert not (output / "adapter_config.json").exists()
    assert weights_changed(tiny_checkpoint, output)


def test_cancel_leaves_nothing(tiny_checkpoint, store, private_tempdir, dpo_records):
    with pytest.raises(TrainingCancelled, match="dpo run cancelled at step 1"):
        run_dpo(config(tiny_checkpoint, store), dpo_records, should_cancel=iter([False, True]).__next__)
    assert not (store / "dpo-1").exists()
    assert leftovers(store, private_tempdir) == []


def test_error_mid_training_leaves_no_checkpoint(tiny_checkpoint, store, private_tempdir, dpo_records):
    def explode(update: ProgressUpdate) -> None:
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        run_dpo(config(tiny_checkpoint, store), dpo_records, on_progress=explode)
    assert not (store / "dpo-1").exists()
    assert leftovers(store, private_tempdir) == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"beta": 0}, "beta must be a positive number, got 0"),
        ({"learning_rate": -1e-6}, "learning_rate must be a positive number, got -1e-06"),
        ({"max_length": 0}, "max_length must be a positive number, got 0"),
    ],
)
def test_invalid_config_is_refused(tiny_checkpoint, store, dpo_records, overrides, message):
    with pytest.raises(ValueError) as error:
        run_dpo(config(tiny_checkpoint, store, **overrides), dpo_records)
    assert str(error.value) == message


def test_bad_pairs_are_refused(tiny_checkpoint, store):
    with pytest.raises(ValueError, match="^DPO data is empty: at least one record is needed$"):
        run_dpo(config(tiny_checkpoint, store), [])
    with pytest.raises(ValueError, match="^DPO record 0: field 'chosen' is missing or blank$"):
        run_dpo(config(tiny_checkpoint, store), [{"prompt": "rude", "chosen": "", "rejected": "rude"}])
    assert list(store.iterdir()) == []


@pytest.mark.slow
def test_default_round_moves_the_bundled_model_towards_chosen(tmp_path, private_tempdir):
    """On the real default model: two steps at the default learning rate already raise the margin."""
    from training.ml.checkpoints import prepare_base_checkpoint

    store = Path(__file__).resolve().parents[2] / "var" / "test-models"  # shared with tests/conftest.py
    base = store / "base-smollm2-135m-instruct"
    prepare_base_checkpoint("bundled", base, name=base.name)
    pairs = [
        {"prompt": "shut up you fool", "chosen": "Please be quiet.", "rejected": "shut up you fool"},
        {"prompt": "this is damn crap", "chosen": "This is not good.", "rejected": "this is damn crap"},
    ] * 2
    cfg = DPORunConfig(parent_dir=base, output_dir=tmp_path / "dpo", max_steps=2, logging_steps=1)
    result = run_dpo(cfg, pairs)
    margins = [entry["rewards/margins"] for entry in result.log_history if "rewards/margins" in entry]
    assert margins[0] == pytest.approx(0.0, abs=1e-3) and margins[-1] > 0.05
    assert weights_changed(base, Path(result.output_dir))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss_type": "exo_pair"}, "loss_type must be one of sigmoid, hinge, ipo"),
        ({"rpo_alpha": -0.5}, "rpo_alpha must be a number >= 0, got -0.5"),
        ({"rpo_alpha": float("nan")}, "rpo_alpha must be a number >= 0, got nan"),
    ],
)
def test_dpo_loss_options_are_validated(tiny_checkpoint, store, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tiny_checkpoint, store, **overrides).validate()


def test_loss_options_reach_trl_and_every_loss_type_is_one_trl_knows(tiny_checkpoint, store):
    import inspect

    from trl import DPOConfig, DPOTrainer

    from training.ml.dpo import LOSS_TYPES

    assert config(tiny_checkpoint, store, rpo_alpha=0).loss_arguments() == {"loss_type": ["sigmoid"]}
    # The default adds RPO's SFT term: plain DPO lowered J in the learning-loop benchmark.
    assert config(tiny_checkpoint, store).loss_arguments() == {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0]}
    rpo = config(tiny_checkpoint, store, loss_type="ipo", rpo_alpha=0.5).loss_arguments()
    assert rpo == {"loss_type": ["ipo", "sft"], "loss_weights": [1.0, 0.5]}
    DPOConfig(output_dir=str(store / "scratch"), use_cpu=True, bf16=False, **rpo)  # TRL accepts the combination
    trl_losses = inspect.getsource(DPOTrainer._compute_loss)
    assert all(f'loss_type == "{name}"' in trl_losses for name in LOSS_TYPES)


def test_rpo_alpha_adds_an_sft_term_and_logps_are_recorded(tiny_checkpoint, store, private_tempdir, dpo_records):
    import math

    plain = run_dpo(config(tiny_checkpoint, store, max_steps=1, rpo_alpha=0), dpo_records)
    rpo_cfg = DPORunConfig(
        parent_dir=tiny_checkpoint, output_dir=store / "dpo-2", learning_rate=1e-3, logging_steps=1, max_steps=1, rpo_alpha=1.0
    )
    with_sft = run_dpo(rpo_cfg, dpo_records)
    first_loss = [entry["loss"] for entry in plain.log_history if "loss" in entry][0]
    first_rpo_loss = [entry["loss"] for entry in with_sft.log_history if "loss" in entry][0]
    assert first_loss == pytest.approx(math.log(2), abs=1e-3)  # policy == reference at step 1
    assert first_rpo_loss > first_loss + 1  # plus the chosen answers' NLL (a random tiny model: several nats)
    for key in ("logps/chosen", "logps/rejected", "rewards/margins"):
        assert {f"first_{key}", f"final_{key}", f"change_{key}"} <= set(plain.metrics)
    assert plain.metrics["both_logps_dropped"] in (0.0, 1.0)


def test_length_grouped_batches_pad_less_than_random_ones(tiny_checkpoint, store, tmp_path):
    """A round's pairs range from a word to a paragraph; grouping them spends the CPU on text, not padding."""
    from training.ml.device import pick_device
    from training.ml.dpo import causal_dpo_trainer

    records = varied_length_pairs(str.upper)

    def padding_share(**overrides) -> float:
        trainer = causal_dpo_trainer(config(tiny_checkpoint, store, **overrides), records, pick_device(), str(tmp_path))
        masks = [batch["attention_mask"] for batch in trainer.get_train_dataloader()]
        assert sum(len(mask) for mask in masks) == 2 * len(records)  # every pair once, chosen and rejected rows
        return sum(float((mask == 0).sum()) for mask in masks) / sum(mask.numel() for mask in masks)

    grouped, random = padding_share(), padding_share(group_by_length=False)
    assert grouped < random / 2, (grouped, random)


def test_precomputed_reference_log_probs_train_like_per_step_ones(tiny_checkpoint, store, private_tempdir, dpo_records):
    """Precomputing the reference's log-probabilities once saves memory (no second model), not a different loss."""
    import math

    def losses(precompute: bool, output: str) -> list[float]:
        cfg = config(tiny_checkpoint, store, max_steps=3, rpo_alpha=0, precompute_ref_log_probs=precompute)
        cfg.output_dir = store / output
        return [entry["loss"] for entry in run_dpo(cfg, dpo_records).log_history if "loss" in entry]

    precomputed, per_step = losses(True, "precomputed"), losses(False, "per-step")
    assert precomputed[0] == pytest.approx(math.log(2), abs=1e-3)  # policy == reference at step 1
    assert precomputed == pytest.approx(per_step, abs=1e-4)


def test_summary_flags_a_round_where_both_logps_drop():
    from training.ml.runs import summarize_metrics

    def log(loss, chosen, rejected, reward_chosen, reward_rejected):
        return {"loss": loss, "logps/chosen": chosen, "logps/rejected": rejected, "rewards/chosen": reward_chosen,
                "rewards/rejected": reward_rejected, "rewards/margins": reward_chosen - reward_rejected}

    history = [log(0.69, -20.0, -21.0, 0.0, 0.0), log(0.60, -22.0, -25.0, -0.1, -0.4), log(0.50, -24.0, -30.0, -0.2, -1.0)]
    metrics = summarize_metrics({"train_loss": 0.6}, history)
    assert metrics["change_logps/chosen"] == -4.0 and metrics["change_logps/rejected"] == -9.0
    assert metrics["first_rewards/margins"] == 0.0 and metrics["final_rewards/margins"] == 0.8
    assert metrics["late_rewards/chosen"] == -0.2 and metrics["both_logps_dropped"] == 1.0


def test_a_length_grouped_rounds_first_long_batch_does_not_fake_a_rising_chosen_logp():
    """Grouped batches log a long pair first and short ones last: the raw log-probabilities rise by tens of
    nats while, pair for pair against the reference (the rewards), both sides fell."""
    from training.ml.runs import summarize_metrics

    history = [
        {"loss": 0.69, "logps/chosen": -60.0, "logps/rejected": -70.0, "rewards/chosen": 0.0, "rewards/rejected": 0.0},
        {"loss": 0.55, "logps/chosen": -12.0, "logps/rejected": -20.0, "rewards/chosen": -0.3, "rewards/rejected": -0.9},
    ]
    metrics = summarize_metrics({"train_loss": 0.6}, history)
    assert metrics["change_logps/chosen"] == 48.0
    assert metrics["both_logps_dropped"] == 1.0
