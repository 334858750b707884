"""Benchmark candidate generation per backend on the CPU; prints ONE JSON object (progress on stderr).

    python bench/bench_generation.py [--model DIR] [--prompts 100] [--backends hf-fp32,torch-int8,ct2-int8]
        [--batch-prompts 8] [--seconds 20] [--baseline] [--parity] [--hardware]

Per backend: annotation supply (batches of ``--batch-prompts`` prompts x 3 sampled candidates; an
item counts when 2+ candidates differ by ``candidate_key``), candidates/s, kept tokens/s, cold
one-prompt latency (p50/p95 over ``--cold-calls`` calls), greedy-evaluation seconds for
``--prompts`` prompts, and the decode-step time at batch 1 and 12. ``--baseline`` adds the old path
(one prompt per ``generate`` call, fp32, 48 tokens, no stop). ``--parity`` compares greedy outputs
of every backend with hf-fp32 on the same prompts (exact-match share; STA/SIM/FL/J/chrF from
training.ml.evaluate with paired bootstrap 95% intervals). ``--hardware`` measures memory bandwidth
and matmul GFLOP/s and derives the per-step limits. No Django.

Without ``--model`` the bundled SmolLM2-135M-Instruct is converted once into
var/models/base-smollm2-135m-instruct. Prompts come from ../shared/data/paradetox.tsv (rows of the
first 8000, a seeded sample) or annotations/demo/demo_prompts.jsonl when that file is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.ml.dedupe import candidate_key  # noqa: E402
from training.ml.device import generation_threads  # noqa: E402
from training.ml.generate import BACKENDS, HF_FP32, DecodingConfig, Generator  # noqa: E402

SHARED_TSV = REPO.parent / "shared" / "data" / "paradetox.tsv"
DEMO = REPO / "annotations" / "demo" / "demo_prompts.jsonl"
DEFAULT_MODEL = REPO / "var" / "models" / "base-smollm2-135m-instruct"


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:  # pragma: no cover - not Linux
        return []


def load_prompts(n: int, seed: int = 0) -> tuple[list[str], list[list[str]], str]:
    """(toxic prompts, references, source): a seeded sample of ``n`` rows, kept in file order."""
    import random

    if SHARED_TSV.exists():
        from training.ml.evaluate import read_references_tsv

        prompts, refs = read_references_tsv(SHARED_TSV)
        prompts, refs = prompts[:8000], refs[:8000]  # the SFT model of RESULTS.md trained on the tail
        source = str(SHARED_TSV)
    else:
        rows = [json.loads(line) for line in DEMO.read_text().splitlines() if line.strip()]
        prompts = [r.get("text") or r.get("toxic") or r.get("prompt") for r in rows]
        refs = [list(r.get("references") or r.get("neutral") or []) for r in rows]
        source = str(DEMO)
    keep = sorted(random.Random(seed).sample(range(len(prompts)), min(n, len(prompts))))
    return [prompts[i] for i in keep], [refs[i] for i in keep], source


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------------
# Hardware figures
# ------------------------------------------------------------------------------------------------


def measure_hardware(threads: int) -> dict[str, Any]:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    out: dict[str, Any] = {"threads": threads, "cpu": _cpu_name()}
    for label, mib in (("dram", 1024), ("cache_64mib", 64)):
        n = mib * 2**20 // 4
        src = torch.ones(n, dtype=torch.float32)
        dst = torch.empty_like(src)
        dst.copy_(src)
        best = float("inf")
        for _ in range(5 if mib > 100 else 30):
            t = time.perf_counter()
            dst.copy_(src)
            best = min(best, time.perf_counter() - t)
        # A copy reads and writes every byte.
        out[f"copy_bandwidth_gbs_{label}"] = round(2 * n * 4 / best / 1e9, 1)
        a = np.ones(n, dtype=np.float32)
        t = time.perf_counter()
        for _ in range(3):
            float(a.sum())
        out[f"read_bandwidth_gbs_{label}_numpy_1thread"] = round(3 * n * 4 / (time.perf_counter() - t) / 1e9, 1)
        del src, dst, a
    for size in (1024, 2048):
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        out[f"matmul_fp32_gflops_{size}"] = round(2 * size**3 / best / 1e9, 1)
    # Matrix-vector (one decode row) at the model's widest layer shape: bandwidth-bound.
    w, x = torch.randn(49152, 576), torch.randn(576, 1)
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        w @ x
        best = min(best, time.perf_counter() - t)
    out["gemv_fp32_lm_head_ms"] = round(best * 1e3, 2)
    out["gemv_fp32_effective_gbs"] = round(w.numel() * 4 / best / 1e9, 1)
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def weight_bytes(generator: Generator) -> int:
    """Bytes of weights one decode step reads: every matrix multiplied (lm_head included, tied or
    not), not the embedding table (a lookup reads one row per token). CTranslate2: model.bin size."""
    if generator._ct2 is not None:
        return (Path(generator._ct2.path) / "model.bin").stat().st_size
    import torch

    total = 0
    for module in generator.model.modules():
        if isinstance(module, torch.nn.Embedding):
            continue
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):
            weight = module.weight()  # torch.ao dynamic-quantized Linear: int8 weight
            total += weight.numel() + weight.q_per_channel_scales().numel() * 8 if weight.qscheme() in (
                torch.per_channel_affine,
                torch.per_channel_symmetric,
            ) else weight.numel() + 8
            continue
        for tensor in module.parameters(recurse=False):
            total += tensor.numel() * tensor.element_size()
    return total


def count_params(model_dir: Path) -> int:
    """Parameters in the checkpoint (a tied embedding/lm_head matrix counted once)."""
    from safetensors import safe_open

    total = 0
    for file in model_dir.glob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            for key in handle.keys():
                shape = handle.get_slice(key).get_shape()
                size = 1
                for d in shape:
                    size *= int(d)
                total += size
    return total


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------


def legacy_sample(generator: Generator, toxic: str, config: DecodingConfig, seed: int) -> list[str]:
    """The pre-change path: one prompt per generate call, no stopping criterion, fp32."""
    import torch

    batch = generator._encode([toxic])
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = generator.model.generate(
            **batch,
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            num_return_sequences=config.num_candidates,
            pad_token_id=generator.tokenizer.pad_token_id,
        )
    return generator._decode(output, batch["input_ids"].shape[1])


def measure_supply(
    generator: Generator, prompts: list[str], config: DecodingConfig, k: int, seconds: float, legacy: bool = False
) -> dict[str, Any]:
    started = time.perf_counter()
    items = items_full = calls = candidates = kept_tokens = 0
    i = 0
    while time.perf_counter() - started < seconds or calls == 0:
        chunk = [prompts[(i + j) % len(prompts)] for j in range(k)]
        i += k
        if legacy:
            texts = [legacy_sample(generator, chunk[0], config, seed=calls)]
        else:
            texts = [[r.text for r in rs] for rs in generator.sample_batch(chunk, config, seed=calls)]
        calls += 1
        for toxic, group in zip(chunk, texts):
            keys = {candidate_key(t) for t in group if t.strip()} - {"", candidate_key(toxic)}
            items += len(keys) >= 2  # what the pool stores (generation.generate_items keeps 2-3 distinct)
            items_full += len(keys) >= config.num_candidates
            candidates += len(group)
            kept_tokens += sum(len(generator.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in group)
    elapsed = time.perf_counter() - started
    return {
        "batch_prompts": k,
        "calls": calls,
        "seconds": round(elapsed, 2),
        "items": items,
        "items_per_s": round(items / elapsed, 2),
        "items_all_distinct_per_s": round(items_full / elapsed, 2),  # every candidate distinct (3 of 3)
        "prompts_per_s": round(calls * k / elapsed, 2),
        "candidates_per_s": round(candidates / elapsed, 2),
        "seconds_per_candidate": round(elapsed / candidates, 3),
        "kept_tokens_per_s": round(kept_tokens / elapsed, 1),
        "example": texts[0],
    }


def measure_cold(
    generator: Generator, prompts: list[str], config: DecodingConfig, calls: int, legacy: bool = False
) -> dict[str, Any]:
    times = []
    for n in range(calls):
        toxic = prompts[(n * 7) % len(prompts)]
        t = time.perf_counter()
        if legacy:
            legacy_sample(generator, toxic, config, seed=n)
        else:
            generator.sample(toxic, config, seed=n)
        times.append(time.perf_counter() - t)
    return {"calls": calls, "p50_s": round(percentile(times, 0.5), 3), "p95_s": round(percentile(times, 0.95), 3)}


def measure_decode_step(generator: Generator, prompt: str, batch: int, steps: int = 24) -> float:
    """Seconds per decode step at ``batch`` rows: (time to ``steps`` forced tokens - time to 1) / (steps - 1)."""

    def run(n_tokens: int) -> float:
        t = time.perf_counter()
        if generator._ct2 is not None:
            starts = [
                generator.tokenizer.convert_ids_to_tokens(generator._encode([prompt])["input_ids"][0].tolist())
            ] * batch
            with generator._ct2.engine(None) as engine:
                engine.generate_batch(
                    starts, max_length=n_tokens, min_length=n_tokens, include_prompt_in_result=False, sampling_topk=1
                )
        else:
            import torch

            inputs = generator._encode([prompt] * batch)
            with torch.inference_mode():
                generator.model.generate(
                    **inputs,
                    do_sample=False,
                    max_new_tokens=n_tokens,
                    min_new_tokens=n_tokens,
                    pad_token_id=generator.tokenizer.pad_token_id,
                )
        return time.perf_counter() - t

    run(2)
    first = min(run(1) for _ in range(2))
    full = min(run(steps) for _ in range(2))
    return (full - first) / (steps - 1)


def bootstrap_ci(values: list[float], reps: int = 2000, seed: int = 0) -> list[float]:
    import numpy as np

    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(reps, data.size))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def parity_block(
    prompts: list[str], references: list[list[str]], outputs: dict[str, list[str]]
) -> dict[str, Any]:
    """Per backend: metrics with bootstrap 95% CIs, and vs hf-fp32: exact-match share and the paired
    difference of each metric with its CI (CI containing 0 = within noise)."""
    from training.ml.evaluate import evaluate_outputs

    block: dict[str, Any] = {"n": len(prompts), "scorers": None}
    rows: dict[str, Any] = {}
    for backend, outs in outputs.items():
        report = evaluate_outputs(prompts, outs, references)
        block["scorers"] = {"classifier": report.meta["classifier"], "embedder": report.meta["embedder"],
                            "fluency": report.meta["fluency"]["mode"]}
        rows[backend] = report.rows
        entry: dict[str, Any] = {"chrf_corpus": round(report.metrics["chrf"], 4)}
        for metric in ("sta", "sim", "fl", "j"):
            values = [getattr(r, metric) for r in report.rows]
            entry[metric] = {"mean": round(statistics.fmean(values), 4), "ci95": bootstrap_ci(values)}
        block[backend] = entry
    reference = outputs.get(HF_FP32)
    if reference is not None:
        for backend, outs in outputs.items():
            if backend == HF_FP32:
                continue
            diff: dict[str, Any] = {
                "exact_match_share": round(sum(a == b for a, b in zip(outs, reference)) / len(outs), 4),
                "candidate_key_match_share": round(
                    sum(candidate_key(a) == candidate_key(b) for a, b in zip(outs, reference)) / len(outs), 4
                ),
            }
            for metric in ("sta", "sim", "fl", "j"):
                deltas = [getattr(a, metric) - getattr(b, metric) for a, b in zip(rows[backend], rows[HF_FP32])]
                ci = bootstrap_ci(deltas)
                diff[f"delta_{metric}"] = {
                    "mean": round(statistics.fmean(deltas), 4),
                    "ci95": ci,
                    "within_noise": ci[0] <= 0 <= ci[1],
                }
            block[f"{backend}_vs_{HF_FP32}"] = diff
    return block


# ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: bundled base)")
    parser.add_argument("--prompts", type=int, default=100, help="prompts for the greedy evaluation and parity")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--batch-prompts", type=int, default=8, help="prompts per sample_batch call")
    parser.add_argument("--seconds", type=float, default=20.0, help="time spent measuring supply per variant")
    parser.add_argument("--cold-calls", type=int, default=20)
    parser.add_argument("--eval-batch", type=int, default=16, help="greedy batch size (EvalConfig default 16)")
    parser.add_argument("--baseline", action="store_true", help="also measure the pre-change path")
    parser.add_argument("--parity", action="store_true", help="score greedy outputs against hf-fp32")
    parser.add_argument("--hardware", action="store_true", help="bandwidth/GFLOP/s and decode-step limits")
    parser.add_argument("--no-eval", action="store_true", help="skip the greedy-evaluation timing")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--ct2-unreproducible", action="store_true", help="also time ct2 with reproducible=False")
    parser.add_argument("--partial", type=Path, default=None, help="rewrite this file with the JSON so far after each step")
    parser.add_argument(
        "--reference-outputs", type=Path, default=None, help="hf-fp32 greedy outputs (JSON list) from an earlier run, for parity"
    )
    args = parser.parse_args()

    threads = generation_threads()
    import torch

    torch.set_num_threads(threads)
    model = args.model or DEFAULT_MODEL
    if args.model is None:
        from training.ml.checkpoints import prepare_base_checkpoint

        log(f"converting the bundled model into {model} (once)")
        prepare_base_checkpoint("bundled", model, name="base-smollm2-135m-instruct")
    config = DecodingConfig(max_new_tokens=args.max_new_tokens)
    prompts, references, source = load_prompts(args.prompts)
    supply_prompts, _, _ = load_prompts(400, seed=1)
    result: dict[str, Any] = {
        "settings": {
            "model": str(model),
            "prompt_source": source,
            "eval_prompts": len(prompts),
            "batch_prompts": args.batch_prompts,
            "seconds_per_supply_run": args.seconds,
            "decoding": config.as_dict(),
            "threads": threads,
            "env": {k: os.environ.get(k) for k in ("TORCH_NUM_THREADS", "GENERATION_THREADS", "GENERATION_BACKEND")},
            "torch": torch.__version__,
        },
        "loadavg_start": loadavg(),
        "backends": {},
    }
    if args.hardware:
        log("hardware figures")
        result["hardware"] = measure_hardware(threads)
        result["hardware"]["params"] = count_params(model)

    greedy_outputs: dict[str, list[str]] = {}
    for backend in [b for b in args.backends.split(",") if b]:
        log(f"== {backend}")
        entry: dict[str, Any] = {"loadavg_before": loadavg()}
        t = time.perf_counter()
        generator = Generator(model, backend=backend)
        entry["label"] = generator.backend
        entry["load_seconds"] = round(time.perf_counter() - t, 2)
        entry["weight_bytes"] = weight_bytes(generator)
        generator.sample_batch(supply_prompts[:2], config, seed=0)  # warm-up
        if args.baseline and backend == HF_FP32:
            log("  baseline (old path: one prompt per call, 48 tokens, no stop)")
            entry["baseline_supply"] = measure_supply(generator, supply_prompts, config, 1, args.seconds, legacy=True)
            log("   ", "baseline_supply", json.dumps({k: v for k, v in entry["baseline_supply"].items() if k != "example"}), loadavg())
            entry["baseline_cold"] = measure_cold(generator, supply_prompts, config, max(5, args.cold_calls // 2), legacy=True)
            log("   ", "baseline_cold", json.dumps({k: v for k, v in entry["baseline_cold"].items() if k != "example"}), loadavg())
            entry["stop_only_supply_k1"] = measure_supply(generator, supply_prompts, config, 1, args.seconds)
            log("   ", "stop_only_supply_k1", json.dumps({k: v for k, v in entry["stop_only_supply_k1"].items() if k != "example"}), loadavg())
        result["backends"][backend] = entry
        log("  supply")
        entry["supply"] = measure_supply(generator, supply_prompts, config, args.batch_prompts, args.seconds)
        log("   ", "supply", json.dumps({k: v for k, v in entry["supply"].items() if k != "example"}), loadavg())
        log("  cold")
        entry["cold"] = measure_cold(generator, supply_prompts, config, args.cold_calls)
        log("   ", "cold", json.dumps({k: v for k, v in entry["cold"].items() if k != "example"}), loadavg())
        if not args.no_eval or args.parity:
            log(f"  greedy evaluation of {len(prompts)} prompts")
            t = time.perf_counter()
            greedy_outputs[backend] = generator.greedy(prompts, max_new_tokens=48, batch_size=args.eval_batch)
            entry["greedy_eval_seconds"] = round(time.perf_counter() - t, 2)
            entry["greedy_eval_seconds_per_560"] = round(entry["greedy_eval_seconds"] * 560 / len(prompts), 1)
            log("    greedy", entry["greedy_eval_seconds"], loadavg())
        if args.hardware:
            log("  decode steps")
            entry["decode_step_ms_batch1"] = round(measure_decode_step(generator, prompts[0], 1) * 1e3, 2)
            entry["decode_step_ms_batch12"] = round(measure_decode_step(generator, prompts[0], 12) * 1e3, 2)
            hw = result["hardware"]
            bandwidth = hw["copy_bandwidth_gbs_dram"] * 1e9
            flops = hw["matmul_fp32_gflops_2048"] * 1e9
            min_step = entry["weight_bytes"] / bandwidth
            flop_per_token = 2 * hw["params"]
            entry["limit"] = {
                "min_step_ms_memory_bound": round(min_step * 1e3, 2),
                "flops_per_token": flop_per_token,
                "min_step_ms_batch12_compute_bound_fp32": round(12 * flop_per_token / flops * 1e3, 2),
                "fraction_of_memory_limit_batch1": round(min_step * 1e3 / entry["decode_step_ms_batch1"], 3),
                "fraction_of_limit_batch12": round(
                    max(min_step, 12 * flop_per_token / flops) * 1e3 / entry["decode_step_ms_batch12"], 3
                ),
            }
        if args.ct2_unreproducible and generator._ct2 is not None:
            log("  ct2 without per-seed engines (reproducible=False)")
            del generator
            generator = Generator(model, backend=backend, reproducible=False)
            generator.sample_batch(supply_prompts[:2], config, seed=0)
            fast = {
                "supply": measure_supply(generator, supply_prompts, config, args.batch_prompts, args.seconds),
                "cold": measure_cold(generator, supply_prompts, config, args.cold_calls),
            }
            fast["supply"].pop("example")
            entry["unreproducible"] = fast
            log("   ", json.dumps(fast), loadavg())
        entry["loadavg_after"] = loadavg()
        result["backends"][backend] = entry
        if backend in greedy_outputs:
            entry["greedy_outputs"] = greedy_outputs[backend]
        if args.partial:
            args.partial.write_text(json.dumps(result, indent=1, default=str))
        log(json.dumps({backend: {k: v for k, v in entry.items() if k not in ("supply",)}}, default=str)[:600])
        del generator
    if args.reference_outputs and HF_FP32 not in greedy_outputs:
        greedy_outputs = {HF_FP32: json.loads(args.reference_outputs.read_text())[: len(prompts)], **greedy_outputs}
        result["settings"]["reference_outputs"] = str(args.reference_outputs)
    if args.parity and greedy_outputs:
        log("parity scoring")
        result["parity"] = parity_block(prompts, references, greedy_outputs)
        result["parity"]["examples"] = [
            {b: greedy_outputs[b][i] for b in greedy_outputs} | {"input": prompts[i]} for i in range(min(3, len(prompts)))
        ]
    result["loadavg_end"] = loadavg()
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
