"""Encoder-decoder (T5) checkpoints: family detection, generation, SFT and DPO on a tiny in-process T5, and
the seq2seq DPO loss checked against TRL's own on identical inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.ml.dpo import DPORunConfig, run_dpo
from training.ml.families import CAUSAL, SEQ2SEQ, family_of
from training.ml.generate import CT2_INT8, HF_FP32, DecodingConfig, Generator
from training.ml.prompting import render_prompt
from training.ml.seq2seq import IGNORE_INDEX, chosen_nll, dpo_sigmoid_loss, sequence_logps
from training.ml.sft import SFTRunConfig, run_sft
from training.ml.tiny import build_tiny_seq2seq_checkpoint

from .helpers import leftovers, varied_length_pairs, weights_changed


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_seq2seq_checkpoint(tmp_path_factory.mktemp("tiny-t5") / "base")


def test_family_comes_from_the_checkpoint_config(tiny_t5, tiny_checkpoint):
    assert family_of(tiny_t5) == SEQ2SEQ and family_of(tiny_checkpoint) == CAUSAL
    assert render_prompt(None, "  you fool ", family=SEQ2SEQ) == "detoxify: you fool"


@pytest.mark.parametrize("backend", [HF_FP32, CT2_INT8])
def test_seq2seq_generator_samples_reproducibly(tiny_t5, backend):
    generator = Generator(tiny_t5, backend=backend)
    assert generator.backend == backend and generator.provenance(DecodingConfig())["backend"] == backend
    config = DecodingConfig(num_candidates=3, max_new_tokens=8)
    first = generator.sample_batch(["you are a stupid idiot", "shut up you fool"], config, seed=7)
    again = generator.sample_batch(["you are a stupid idiot", "shut up you fool"], config, seed=7)
    assert [len(rows) for rows in first] == [3, 3]
    assert [[r.text for r in rows] for rows in first] == [[r.text for r in rows] for rows in again]
    assert generator.greedy(["this is damn crap"], max_new_tokens=8) == generator.greedy(["this is damn crap"], max_new_tokens=8)


def test_seq2seq_sft_trains_and_saves_a_self_describing_checkpoint(tiny_t5, store, private_tempdir, sft_records):
    cfg = SFTRunConfig(parent_dir=tiny_t5, output_dir=store / "sft-1", max_steps=4, batch_size=4, learning_rate=1e-3, logging_steps=1)
    result = run_sft(cfg, sft_records, meta={"round": 1})
    output = Path(result.output_dir)
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert result.steps == 4 and losses and losses[-1] < losses[0]
    assert weights_changed(tiny_t5, output) and family_of(output) == SEQ2SEQ
    version = json.loads((output / "version.json").read_text())
    assert version["family"] == SEQ2SEQ and version["kind"] == "sft" and version["round"] == 1
    assert leftovers(store, private_tempdir) == []


def test_seq2seq_dpo_moves_the_model_towards_chosen(tiny_t5, store, private_tempdir, dpo_records):
    cfg = DPORunConfig(parent_dir=tiny_t5, output_dir=store / "dpo-1", max_steps=6, learning_rate=1e-3, logging_steps=1, rpo_alpha=0)
    result = run_dpo(cfg, dpo_records)
    losses = [entry["loss"] for entry in result.log_history if "loss" in entry]
    assert abs(losses[0] - 0.6931) < 1e-3  # policy == reference at the first step: -logsigmoid(0)
    assert losses[-1] < losses[0] and result.metrics["final_rewards/margins"] > 0
    assert {"first_logps/chosen", "change_logps/rejected", "both_logps_dropped"} <= set(result.metrics)
    assert weights_changed(tiny_t5, Path(result.output_dir))
    assert json.loads((Path(result.output_dir) / "version.json").read_text())["hyperparameters"]["beta"] == 0.1
    assert leftovers(store, private_tempdir) == []


def test_seq2seq_lora_sft_is_saved_merged(tiny_t5, store, private_tempdir, sft_records):
    cfg = SFTRunConfig(parent_dir=tiny_t5, output_dir=store / "lora", max_steps=1, batch_size=4, use_lora=True)
    output = Path(run_sft(cfg, sft_records).output_dir)
    assert not (output / "adapter_config.json").exists() and weights_changed(tiny_t5, output)


def test_seq2seq_sft_groups_rows_by_length(tiny_t5, store, private_tempdir, sft_records):
    cfg = SFTRunConfig(parent_dir=tiny_t5, output_dir=store / "grouped", max_steps=2, batch_size=4, group_by_length=True)
    result = run_sft(cfg, sft_records)
    assert result.steps == 2 and weights_changed(tiny_t5, Path(result.output_dir))


def test_seq2seq_dpo_groups_pairs_by_length(tiny_t5, store, tmp_path):
    """As for decoder-only models: like-length pairs share a batch, so the CPU multiplies text, not padding."""
    from training.ml.device import pick_device
    from training.ml.seq2seq import dpo_trainer

    # Reversed words, not upper case: T5's tokenizer splits capitals into longer sequences.
    records = varied_length_pairs(lambda text: " ".join(reversed(text.split())))

    def padding_share(**overrides) -> float:
        cfg = DPORunConfig(parent_dir=tiny_t5, output_dir=store / "grouping", batch_size=4, **overrides)
        batches = list(dpo_trainer(cfg, records, pick_device(), str(tmp_path)).get_train_dataloader())
        assert sum(len(batch["labels"]) for batch in batches) == 2 * len(records)  # every pair once, both answers
        padded = sum(int((batch["labels"] == IGNORE_INDEX).sum()) for batch in batches)
        return padded / sum(batch["labels"].numel() for batch in batches)

    grouped, random = padding_share(), padding_share(group_by_length=False)
    assert grouped < random / 2, (grouped, random)


def test_seq2seq_dpo_refuses_losses_and_options_it_does_not_implement(tiny_t5, store):
    with pytest.raises(ValueError, match="encoder-decoder models train with loss_type 'sigmoid' only"):
        DPORunConfig(parent_dir=tiny_t5, output_dir=store / "x", loss_type="ipo").validate()
    with pytest.raises(ValueError, match="precompute_ref_log_probs is TRL's, for decoder-only models"):
        DPORunConfig(parent_dir=tiny_t5, output_dir=store / "x", precompute_ref_log_probs=True).validate()


def test_sequence_logps_match_the_models_own_cross_entropy(tiny_t5):
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5).eval()
    inputs = torch.tensor([[5, 6, 7, 1]])
    labels = torch.tensor([[8, 9, 1, IGNORE_INDEX]])
    with torch.no_grad():
        outputs = model(input_ids=inputs, labels=labels)
    assert torch.allclose(sequence_logps(outputs.logits, labels), -outputs.loss * 3, atol=1e-5)


def test_dpo_loss_and_rewards_equal_trls_on_identical_inputs(tiny_checkpoint, tmp_path, dpo_records):
    """TRL's DPOTrainer computes loss and metrics on a causal batch; ours, fed the same model outputs, agrees."""
    from trl import DPOConfig, DPOTrainer

    from training.ml.data import build_dpo_dataset
    from training.ml.device import pick_device
    from training.ml.runs import common_training_arguments, load_model_and_tokenizer

    cfg = DPORunConfig(parent_dir=tiny_checkpoint, output_dir=tmp_path / "unused", beta=0.3)
    policy, tokenizer = load_model_and_tokenizer(tiny_checkpoint)
    reference, _ = load_model_and_tokenizer(tiny_checkpoint)
    torch.manual_seed(0)
    with torch.no_grad():  # a policy that differs from its reference, so rewards are not all zero
        for parameter in policy.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    args = DPOConfig(**common_training_arguments(cfg, pick_device("cpu"), str(tmp_path)), beta=cfg.beta, loss_type=["sigmoid"])
    trainer = DPOTrainer(
        model=policy, ref_model=reference, args=args, train_dataset=build_dpo_dataset(dpo_records, tokenizer), processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()  # no dropout in either computation
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch)
    trl_metrics = {k: v[-1] for k, v in trainer._metrics["eval"].items()}

    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, IGNORE_INDEX)[:, 1:]
    with torch.no_grad():
        ours = [
            sequence_logps(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1], labels)
            for model in (trainer.model, trainer.ref_model)
        ]
    (policy_chosen, policy_rejected), (ref_chosen, ref_rejected) = (x.chunk(2) for x in ours)
    loss, chosen_rewards, rejected_rewards = dpo_sigmoid_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=cfg.beta)

    assert abs(trl_metrics["rewards/margins"]) > 1e-3  # a real comparison, not 0 == 0
    assert torch.allclose(loss, trl_loss, atol=1e-5)
    assert trl_metrics["rewards/margins"] == pytest.approx(float((chosen_rewards - rejected_rewards).mean()), abs=1e-5)
    assert trl_metrics["rewards/chosen"] == pytest.approx(float(chosen_rewards.mean()), abs=1e-5)
    assert trl_metrics["logps/chosen"] == pytest.approx(float(policy_chosen.mean()), abs=1e-4)
    assert trl_metrics["logps/rejected"] == pytest.approx(float(policy_rejected.mean()), abs=1e-4)

    # RPO (the default rpo_alpha 1): TRL's sigmoid + "sft" losses equal ours plus chosen_nll.
    rpo_args = DPOConfig(
        **common_training_arguments(cfg, pick_device("cpu"), str(tmp_path)), beta=cfg.beta, **cfg.loss_arguments()
    )
    rpo_trainer = DPOTrainer(
        model=trainer.model, ref_model=reference, args=rpo_args, train_dataset=build_dpo_dataset(dpo_records, tokenizer),
        processing_class=tokenizer,
    )
    with torch.no_grad():
        trl_rpo_loss = rpo_trainer.compute_loss(rpo_trainer.model, batch)
    ours_rpo = loss + cfg.rpo_alpha * chosen_nll(policy_chosen, labels.chunk(2)[0])
    assert cfg.rpo_alpha == 1.0 and torch.allclose(ours_rpo, trl_rpo_loss, atol=1e-5)


def test_seq2seq_lora_dpo_is_saved_merged(tiny_t5, store, private_tempdir, dpo_records):
    cfg = DPORunConfig(parent_dir=tiny_t5, output_dir=store / "lora-dpo", max_steps=1, use_lora=True)
    output = Path(run_dpo(cfg, dpo_records).output_dir)
    assert not (output / "adapter_config.json").exists() and weights_changed(tiny_t5, output)


def test_training_and_generation_feed_the_encoder_the_same_tokens(tiny_t5):
    from training.ml.seq2seq import encode, source_ids

    generator = Generator(tiny_t5, backend=HF_FP32)
    tokenizer = generator.tokenizer
    generation_ids = generator._encode(["shut up you fool"])["input_ids"][0].tolist()
    assert source_ids(tokenizer, "shut up you fool", 128) == generation_ids
    assert generation_ids[-1] == tokenizer.eos_token_id and tokenizer.decode(generation_ids, skip_special_tokens=True) == "detoxify: shut up you fool"
    assert encode(tokenizer, "please be quiet", 128)[-1] == tokenizer.eos_token_id  # the decoder learns to stop


def test_registering_a_t5_directory_converts_it_and_records_its_family(tiny_t5, tmp_path):
    from training.ml.checkpoints import prepare_base_checkpoint

    meta = prepare_base_checkpoint(str(tiny_t5), tmp_path / "base-t5", name="base-t5")
    assert meta["family"] == SEQ2SEQ and family_of(tmp_path / "base-t5") == SEQ2SEQ
    assert weights_changed(tiny_t5, tmp_path / "base-t5") is False


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("sentencepiece") is not None, reason="sentencepiece installed")
def test_t5_directory_without_a_fast_tokenizer_is_refused_with_the_way_out(tiny_t5, tmp_path):
    import shutil

    from training.ml.checkpoints import CheckpointError, prepare_base_checkpoint

    source = tmp_path / "slow-t5"
    shutil.copytree(tiny_t5, source)
    (source / "tokenizer.json").unlink()
    (source / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer"}))
    (source / "spiece.model").write_bytes(b"\0not a sentencepiece model")
    with pytest.raises(CheckpointError, match="A T5 directory needs its tokenizer.json"):
        prepare_base_checkpoint(str(source), tmp_path / "base")
    assert not (tmp_path / "base").exists()


def test_a_declared_prompt_prefix_is_used_by_generation_and_inherited_by_training(tiny_t5, tmp_path, store, sft_records):
    from training.ml.checkpoints import prepare_base_checkpoint
    from training.ml.families import task_prefix
    from training.ml.seq2seq import sft_features

    base = tmp_path / "base-no-prefix"
    prepare_base_checkpoint(str(tiny_t5), base, prompt_prefix="")
    assert task_prefix(base) == "" and task_prefix(tiny_t5) is None
    generator = Generator(base, backend=HF_FP32)
    assert generator.tokenizer.decode(generator._encode(["you fool"])["input_ids"][0], skip_special_tokens=True) == "you fool"
    features = sft_features(sft_records[:1], generator.tokenizer, 128, prefix="")
    assert features[0]["input_ids"] == generator._encode([sft_records[0]["prompt"]])["input_ids"][0].tolist()
    child = run_sft(SFTRunConfig(parent_dir=base, output_dir=store / "child", max_steps=1, batch_size=4), sft_records)
    assert task_prefix(child.output_dir) == ""


def test_a_prompt_prefix_is_refused_for_a_causal_model(tiny_checkpoint, tmp_path):
    from training.ml.checkpoints import CheckpointError, prepare_base_checkpoint

    with pytest.raises(CheckpointError, match="a prompt prefix applies to encoder-decoder"):
        prepare_base_checkpoint(str(tiny_checkpoint), tmp_path / "base", prompt_prefix="")
