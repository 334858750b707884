"""SFT and DPO for encoder-decoder (T5/BART-style) checkpoints.

SFT uses transformers' own ``Seq2SeqTrainer`` and ``DataCollatorForSeq2Seq``. TRL 1.16's ``DPOTrainer``
is decoder-only (it masks a prompt+completion sequence fed to one stack), so DPO here is a small
``transformers.Trainer`` with TRL's sigmoid loss: the same formula, the same summed completion
log-probabilities and the same logged ``rewards/*`` and ``logps/*`` names (``tests/ml/test_seq2seq.py``
checks it against TRL on identical inputs). The frozen reference is the parent checkpoint.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .batching import length_grouped
from .device import DeviceInfo
from .families import SEQ2SEQ, task_prefix
from .prompting import render_prompt
from .runs import common_training_arguments, load_model_and_tokenizer, lora_config
from .sft import SFTRunConfig, sampling_arguments

if TYPE_CHECKING:
    import torch

    from .dpo import DPORunConfig

IGNORE_INDEX = -100  # label positions the loss skips (padding)
# TRL-only settings in ``common_training_arguments``; plain ``TrainingArguments`` do not know them.
TRL_ONLY_ARGUMENTS = ("max_length", "activation_checkpointing")


def training_arguments(cfg: Any, device: DeviceInfo, scratch: str, **extra: Any) -> Any:
    """``Seq2SeqTrainingArguments`` with the settings every run shares (see ``common_training_arguments``)
    and ``extra`` ones."""
    from transformers import Seq2SeqTrainingArguments

    shared = {k: v for k, v in common_training_arguments(cfg, device, scratch).items() if k not in TRL_ONLY_ARGUMENTS}
    # Our rows are token ids, not the model's argument names: keep every column for the collator.
    return Seq2SeqTrainingArguments(**shared, **extra, gradient_checkpointing=False, remove_unused_columns=False)


def encode(tokenizer: Any, text: str, max_length: int) -> list[int]:
    """Token ids as generation feeds them: the tokenizer's own special tokens (T5 appends ``</s>``)."""
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    if not ids or ids[-1] != tokenizer.eos_token_id:  # a tokenizer without a post-processor: end the answer anyway
        ids = ids[: max_length - 1] + [tokenizer.eos_token_id]
    return ids


def source_ids(tokenizer: Any, toxic: str, max_length: int, *, prefix: str | None = None) -> list[int]:
    """The encoder input for ``toxic`` (``prefix`` as the checkpoint declares it; None = the default)."""
    text = render_prompt(tokenizer, toxic, family=SEQ2SEQ, prefix=prefix)
    return tokenizer(text, truncation=True, max_length=max_length)["input_ids"]


def sft_features(
    records: Sequence[dict[str, Any]], tokenizer: Any, max_length: int, *, prefix: str | None = None
) -> list[dict[str, list[int]]]:
    """Encoder inputs and labels for ``{"prompt", "completion"}`` records (prompt and answer each up to ``max_length``)."""
    rows = []
    for record in records:
        ids = source_ids(tokenizer, record["prompt"], max_length, prefix=prefix)
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": encode(tokenizer, record["completion"].strip(), max_length)})
    return rows


def sft_trainer(cfg: SFTRunConfig, records: Sequence[dict[str, Any]], device: DeviceInfo, scratch: str) -> Any:
    """A ``Seq2SeqTrainer`` on the parent checkpoint (LoRA adapter when ``cfg.use_lora``)."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer

    model, tokenizer = load_model_and_tokenizer(cfg.parent_dir)
    model = _with_lora(model, cfg)
    return Seq2SeqTrainer(
        model=model,
        args=training_arguments(cfg, device, scratch, **sampling_arguments(cfg)),
        train_dataset=Dataset.from_list(sft_features(records, tokenizer, cfg.max_length, prefix=task_prefix(cfg.parent_dir))),
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE_INDEX),
        processing_class=tokenizer,
    )


def _with_lora(model: Any, cfg: Any) -> Any:
    if not cfg.use_lora:
        return model
    from peft import get_peft_model

    return get_peft_model(model, lora_config(cfg))


# --- DPO --------------------------------------------------------------------------------------------


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of each row's label tokens (positions labelled ``IGNORE_INDEX`` skipped).

    ``logits[:, t]`` must predict ``labels[:, t]`` (a seq2seq decoder's alignment; shift causal logits first).
    """
    import torch

    mask = labels != IGNORE_INDEX
    per_token = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (per_token * mask).sum(dim=-1)


def dpo_sigmoid_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    *,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO's sigmoid loss, -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), averaged over the batch,
    with the implicit rewards beta * (pi - ref) of the chosen and rejected answers (detached)."""
    import torch.nn.functional as F

    chosen_logratios = policy_chosen - reference_chosen
    rejected_logratios = policy_rejected - reference_rejected
    loss = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def chosen_nll(policy_chosen: torch.Tensor, chosen_labels: torch.Tensor) -> torch.Tensor:
    """RPO's term, TRL's "sft" loss: the mean negative log-likelihood over every chosen answer token
    of the batch (``policy_chosen`` holds each row's summed log-probabilities)."""
    return -policy_chosen.sum() / (chosen_labels != IGNORE_INDEX).sum().clamp(min=1)


def dpo_features(
    records: Sequence[dict[str, Any]], tokenizer: Any, max_length: int, *, prefix: str | None = None
) -> list[dict[str, list[int]]]:
    """Encoder input, chosen and rejected label ids for ``{"prompt", "chosen", "rejected"}`` records."""
    return [
        {
            "prompt_ids": source_ids(tokenizer, r["prompt"], max_length, prefix=prefix),
            "chosen_ids": encode(tokenizer, r["chosen"].strip(), max_length),
            "rejected_ids": encode(tokenizer, r["rejected"].strip(), max_length),
        }
        for r in records
    ]


class PreferenceCollator:
    """A batch of B preferences as 2B rows, chosen first: the prompt twice, labels padded with ``IGNORE_INDEX``."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        import torch

        prompts = [f["prompt_ids"] for f in features] * 2
        answers = [f["chosen_ids"] for f in features] + [f["rejected_ids"] for f in features]

        def pad(rows: list[list[int]], value: int) -> torch.Tensor:
            width = max(len(r) for r in rows)
            return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)

        return {
            "input_ids": pad(prompts, self.pad_token_id),
            "attention_mask": pad([[1] * len(p) for p in prompts], 0),
            "labels": pad(answers, IGNORE_INDEX),
        }


def _dpo_trainer_class() -> type:
    from transformers import Trainer

    class Seq2SeqDPOTrainer(Trainer):
        """``Trainer`` whose loss is DPO's sigmoid loss against a frozen reference model; logs TRL's metric names."""

        def __init__(self, *args: Any, ref_model: Any, beta: float, rpo_alpha: float = 0.0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ref_model = ref_model.to(self.args.device).eval().requires_grad_(False)
            self.beta = beta
            self.rpo_alpha = rpo_alpha
            self.model_accepts_loss_kwargs = False  # our loss is a batch mean; let Trainer scale accumulation
            self._metrics: dict[str, list[float]] = defaultdict(list)

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
            import torch

            labels = inputs["labels"]
            outputs = model(**inputs, use_cache=False)
            policy_chosen, policy_rejected = sequence_logps(outputs.logits, labels).chunk(2)
            with torch.no_grad():
                reference = sequence_logps(self.ref_model(**inputs, use_cache=False).logits, labels)
            reference_chosen, reference_rejected = reference.chunk(2)
            loss, chosen_rewards, rejected_rewards = dpo_sigmoid_loss(
                policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=self.beta
            )
            if self.rpo_alpha:
                loss = loss + self.rpo_alpha * chosen_nll(policy_chosen, labels.chunk(2)[0])
            for name, value in (
                ("rewards/chosen", chosen_rewards.mean()),
                ("rewards/rejected", rejected_rewards.mean()),
                ("rewards/accuracies", (chosen_rewards > rejected_rewards).float().mean()),
                ("rewards/margins", (chosen_rewards - rejected_rewards).mean()),
                ("logps/chosen", policy_chosen.detach().mean()),
                ("logps/rejected", policy_rejected.detach().mean()),
            ):
                self._metrics[name].append(float(value))
            return (loss, outputs) if return_outputs else loss

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            # As TRL does: each logged row carries the means since the previous log.
            logs.update({k: sum(v) / len(v) for k, v in self._metrics.items() if v})
            self._metrics.clear()
            super().log(logs, start_time)

    return Seq2SeqDPOTrainer


def dpo_trainer(cfg: DPORunConfig, records: Sequence[dict[str, Any]], device: DeviceInfo, scratch: str) -> Any:
    """The DPO trainer on the parent checkpoint, batching pairs of like length when asked; the reference
    is a second, frozen copy of the parent."""
    from datasets import Dataset

    model, tokenizer = load_model_and_tokenizer(cfg.parent_dir)
    reference, _ = load_model_and_tokenizer(cfg.parent_dir)
    trainer_class = _dpo_trainer_class()
    features = dpo_features(records, tokenizer, cfg.max_length, prefix=task_prefix(cfg.parent_dir))
    return (length_grouped(trainer_class) if cfg.group_by_length else trainer_class)(
        model=_with_lora(model, cfg),
        ref_model=reference,
        beta=cfg.beta,
        rpo_alpha=float(cfg.rpo_alpha),
        args=training_arguments(cfg, device, scratch),
        train_dataset=Dataset.from_list(features),
        data_collator=PreferenceCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
    )
