"""Benchmark SFT and DPO on the bundled SmolLM2-135M with ParaDetox rows; prints one JSON object.

    python bench/bench_training.py --steps 20 --pairs 40 [--effect]

The bundled GGUF is converted once into ``--cache`` (default ``var/bench/base``) and reused. Run
outputs go to temporary directories that are removed afterwards. ``--effect`` also measures how a
DPO round with the default settings moves the model: the chosen-vs-rejected log-probability margin
on the training pairs and on held-out pairs, and how many greedy rewrites change.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.ml.checkpoints import library_versions, prepare_base_checkpoint  # noqa: E402
from training.ml.device import limit_cpu_threads  # noqa: E402
from training.ml.dpo import DPORunConfig, run_dpo  # noqa: E402
from training.ml.sft import SFTRunConfig, run_sft  # noqa: E402

csv.field_size_limit(1 << 20)


def read_paradetox(path: Path) -> list[dict[str, str]]:
    """Rows with ``toxic`` and ``neutral1`` (TSV with header toxic, neutral1, neutral2, neutral3)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"toxic", "neutral1"} - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"error: {path} lacks the column(s) {', '.join(sorted(missing))}")
        rows = [row for row in reader if (row.get("toxic") or "").strip() and (row.get("neutral1") or "").strip()]
    return [{"toxic": r["toxic"].strip(), "neutral": r["neutral1"].strip()} for r in rows]


def synthetic_pairs(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"prompt": r["toxic"], "chosen": r["neutral"], "rejected": r["toxic"]} for r in rows]


def completion_logprob(model: Any, tokenizer: Any, prompt: str, completion: str) -> float:
    """Sum of log p(completion tokens | prompt), the quantity DPO's implicit reward is built from."""
    import torch

    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([full_ids])
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    picked = logprobs.gather(1, targets[:, None])[:, 0]
    return float(picked[len(prompt_ids) - 1 :].sum())


def mean_margin(model_dir: Path, pairs: list[dict[str, str]]) -> float:
    """Mean of log p(chosen) - log p(rejected) over ``pairs`` under the model at ``model_dir``."""
    from training.ml.prompting import render_prompt
    from training.ml.runs import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir)
    model.eval()
    margins = []
    for pair in pairs:
        prompt = render_prompt(tokenizer, pair["prompt"])
        eos = tokenizer.eos_token
        margins.append(
            completion_logprob(model, tokenizer, prompt, pair["chosen"] + eos)
            - completion_logprob(model, tokenizer, prompt, pair["rejected"] + eos)
        )
    return sum(margins) / len(margins)


def dpo_effect(parent: Path, child: Path, train: list[dict[str, str]], heldout: list[dict[str, str]]) -> dict[str, Any]:
    from training.ml.generate import Generator

    prompts = [p["prompt"] for p in train + heldout]
    before = Generator(parent).greedy(prompts)
    after = Generator(child).greedy(prompts)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    copies = lambda outputs: sum(o.strip().lower() == p.strip().lower() for o, p in zip(outputs, prompts))  # noqa: E731
    return {
        "margin_train_before": round(mean_margin(parent, train), 3),
        "margin_train_after": round(mean_margin(child, train), 3),
        "margin_heldout_before": round(mean_margin(parent, heldout), 3),
        "margin_heldout_after": round(mean_margin(child, heldout), 3),
        "greedy_changed": f"{len(changed)}/{len(prompts)}",
        "greedy_copies_input_before": copies(before),
        "greedy_copies_input_after": copies(after),
        "examples": [{"toxic": prompts[i], "before": before[i], "after": after[i]} for i in changed[:4]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "paradetox.tsv")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench", help="holds the converted base model")
    parser.add_argument("--steps", type=int, default=20, help="SFT optimisation steps")
    parser.add_argument("--sft-batch-size", type=int, default=SFTRunConfig.batch_size)
    parser.add_argument("--pairs", type=int, default=40, help="synthetic preference pairs in the DPO round")
    parser.add_argument("--dpo-lr", type=float, help="default: the DPO default (x10 with --lora)")
    parser.add_argument("--effect", action="store_true", help="also measure how the DPO round moved the model")
    parser.add_argument("--heldout", type=int, default=40, help="held-out pairs for --effect")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    args = parser.parse_args()

    if not args.data.is_file():
        sys.exit(f"error: data file not found: {args.data} (pass --data PATH to ParaDetox's TSV)")
    limit_cpu_threads()
    import torch

    rows = read_paradetox(args.data)
    sft_rows = rows[: args.steps * args.sft_batch_size]
    dpo_rows = rows[len(sft_rows) : len(sft_rows) + args.pairs]
    heldout_rows = rows[len(sft_rows) + args.pairs : len(sft_rows) + args.pairs + args.heldout]
    if len(dpo_rows) < args.pairs:
        sys.exit(f"error: {args.data} has too few usable rows for {args.steps} steps and {args.pairs} pairs")

    started = time.perf_counter()
    base = args.cache / "base"
    prepare_base_checkpoint("bundled", base)
    convert_seconds = time.perf_counter() - started

    sft_records = [{"prompt": r["toxic"], "completion": r["neutral"]} for r in sft_rows]
    # Synthetic preferences: the reference rewrite beats repeating the toxic text.
    dpo_records, heldout_pairs = synthetic_pairs(dpo_rows), synthetic_pairs(heldout_rows)

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=args.cache, prefix="run-") as scratch:
        sft_cfg = SFTRunConfig(
            parent_dir=base, output_dir=Path(scratch) / "sft", max_steps=args.steps, batch_size=args.sft_batch_size,
            use_lora=args.lora,
        )
        sft = run_sft(sft_cfg, sft_records)
        dpo_cfg = DPORunConfig(
            parent_dir=base, output_dir=Path(scratch) / "dpo", learning_rate=args.dpo_lr, use_lora=args.lora
        )
        dpo = run_dpo(dpo_cfg, dpo_records)
        dpo_train = dpo.metrics["train_runtime"]
        report = {
            "sft_tokens_per_s": round(sft.metrics["num_input_tokens_seen"] / sft.metrics["train_runtime"], 1),
            "sft_seconds": round(sft.seconds, 1),
            "sft_train_seconds": round(sft.metrics["train_runtime"], 1),
            "sft_steps": sft.steps,
            "sft_batch_size": args.sft_batch_size,
            "sft_loss_first_last": [
                round(next(e["loss"] for e in sft.log_history if "loss" in e), 3),
                round(sft.metrics["final_loss"], 3),
            ],
            # Training time of a default round (DPORunConfig.epochs epochs) per 100 pairs; add the fixed overhead.
            "dpo_seconds_per_100_pairs": round(dpo_train / args.pairs * 100, 1),
            "dpo_fixed_overhead_seconds": round(dpo.seconds - dpo_train, 1),
            "dpo_seconds": round(dpo.seconds, 1),
            "dpo_pairs": args.pairs,
            "dpo_epochs": dpo_cfg.epochs,
            "dpo_learning_rate": dpo_cfg.learning_rate,
            "dpo_final_metrics": {
                k.removeprefix("final_"): round(v, 4) for k, v in dpo.metrics.items() if k.startswith("final_")
            },
            "base_convert_seconds": round(convert_seconds, 1),
            "lora": args.lora,
            "device": sft.device,
            "torch_threads": torch.get_num_threads(),
            "library_versions": library_versions(),
        }
        if args.effect:
            report["dpo_effect"] = dpo_effect(base, Path(dpo.output_dir), dpo_records, heldout_pairs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
