"""Collect → review → train → evaluate rounds through the platform's own services; prints JSON.

    DATABASE_URL=... MODEL_STORE=... python bench/dpo_round.py VERSION [--rounds 3] [--prompts 100]
        [--annotator lexicon|minimal|reference|noisy[,KIND...]] [--oversample 2[,F...] --pool-order failures]
        [--variant rpo_alpha=1.0 --variant rpo_alpha=0,reject_own_echo=0] ...

Run it against a database that holds ParaDetox (e.g. the one ``bench/quick_loop.sh`` leaves in
/tmp/detox-loop). Each round activates the parent, fills the pool with real sampled candidates and
lets a simulated annotator choose; a simulated reviewer approves the round's pairs; one DPO run per
``--variant`` trains on exactly those pairs with the parent as reference, and every child is
evaluated on the whole held-out split (prompts no round ever sees) and compared with its parent by
the platform's paired bootstrap (ΔJ, ΔSTA, ΔSIM, ΔFL with 95 % intervals). The first variant's
child is the next round's parent, so the variants share their data and differ only in training.
Data filters are the platform's defaults, the automatic input-rejection rule included (every prompt
after an SFT parent, only the prompts the model echoed after a DPO parent); ``--variant
reject_input_only_echoed=1`` (or ``=0``) fixes it. With ``--oversample F`` the pool is filled with F
times ``--prompts`` items and the annotator judges the first ``--prompts`` in the pool's serving order
(``--pool-order``, as ``POOL_ORDER``): active selection, as a team with a full pool would see it;
``--oversample 2,6`` changes the factor between rounds, as ``--annotator`` changes the team.

The annotators never use the evaluation's own scorers (profanity-check for STA, MiniLM for SIM):
- ``reference``: the candidate closest (chrF) to the prompt's human references; writes the
  reference itself when no candidate comes within chrF 35.
- ``lexicon`` (default): knows offensive words as a careful person does -- a lexicon learned from
  the training split (words the human rewrites delete from the toxic side) -- and picks, among
  candidates without such words that do not hand the toxic sentence back (its words unchanged),
  the one closest (chrF) to the references; writes the reference when none is clean and close.
- ``minimal``: ParaDetox's own instruction to its writers -- change as little as needed: among the
  clean candidates (as ``lexicon`` judges them) the one closest (chrF) to the toxic sentence itself,
  so meaning is kept; writes the reference when no candidate is clean.
- ``noisy``: the lexicon annotator, but a fifth of its choices is a random candidate, as a hurried
  human's would be.
Each round also reports ``pair_diagnostics``: its pairs read afterwards with the evaluation's own
scorers (what they can teach about STA, each side's mean J) and how many reject a candidate repeating
the input.
``--annotator minimal,lexicon`` changes the team between rounds: round k is judged by the k-th kind
named, the last one for every later round.
Users are named ``sim-<annotator>`` / ``sim-reviewer`` so they are easy to tell apart from real work.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detoxsite.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.utils import timezone  # noqa: E402
from sacrebleu.metrics import CHRF  # noqa: E402

from annotations.models import AnnotationItem, PreferencePair, Prompt  # noqa: E402
from annotations.review import approve_pairs  # noqa: E402
from annotations.services import next_assignment, submit_judgement  # noqa: E402
from core.roles import make_reviewer  # noqa: E402
from evaluation.models import Evaluation  # noqa: E402
from evaluation.services import compare_versions, latest_metrics, queue_evaluation, run_evaluation, score_rewrites  # noqa: E402
from training.executor import execute_run  # noqa: E402
from training.generation import refill_pool  # noqa: E402
from training.datasets import DataFilters  # noqa: E402
from training.ml.data import normalised_words  # noqa: E402
from training.ml.device import available_cores, limit_cpu_threads  # noqa: E402
from training.models import ModelVersion, TrainingRun  # noqa: E402
from training.services import activate_version, start_training_run  # noqa: E402

CHRF_METRIC = CHRF()
OWN_REWRITE_BELOW = 35.0  # chrF under which the annotator writes the reference instead
J_MARGIN = 0.02  # a pair's sides differ in J when they differ by more than this (pair_diagnostics)
WORD = re.compile(r"[a-z']+")


def offensive_lexicon(*, min_count: int = 4, min_deleted: float = 0.8) -> set[str]:
    """Words the human rewrites of the training split delete from the toxic side at least
    ``min_deleted`` of the time (seen ``min_count`` times or more): what a careful annotator avoids."""
    seen: Counter[str] = Counter()
    deleted: Counter[str] = Counter()
    for text, references in Prompt.objects.for_annotation().exclude(references=[]).values_list("text", "references"):
        kept = set(WORD.findall(" ".join(references).lower()))
        for word in set(WORD.findall(text.lower())):
            seen[word] += 1
            deleted[word] += word not in kept
    return {w for w, n in seen.items() if n >= min_count and deleted[w] / n >= min_deleted}


class Annotator:
    """Chooses like one of the annotators described in the module docstring."""

    def __init__(self, kind: str, *, seed: int = 0) -> None:
        self.kind = kind
        self.lexicon = offensive_lexicon() if kind in ("lexicon", "minimal", "noisy") else set()
        self.random = random.Random(seed)

    def clean(self, text: str, toxic: str) -> bool:
        """No offensive word (lexicon annotators) and not the toxic sentence handed back unchanged."""
        return not (set(WORD.findall(text.lower())) & self.lexicon) and normalised_words(text) != normalised_words(toxic)

    def choose(self, candidates: list, references: list[str], toxic: str = "") -> tuple[int | None, str]:
        """(candidate id, "") for a choice or (None, own rewrite)."""
        if self.kind == "noisy" and self.random.random() < 0.2:
            return self.random.choice(candidates).pk, ""
        if self.kind == "minimal":
            clean = [c for c in candidates if self.clean(c.text, toxic)]
            if references and not clean:
                return None, references[0]
            closest = max(clean or candidates, key=lambda c: CHRF_METRIC.sentence_score(c.text, [toxic]).score)
            return closest.pk, ""
        scored = [(self.clean(c.text, toxic), CHRF_METRIC.sentence_score(c.text, references).score, c.pk) for c in candidates]
        clean, score, best = max(scored)
        if references and not (clean and score >= OWN_REWRITE_BELOW):
            return None, references[0]
        return best, ""


ANNOTATORS = ("lexicon", "minimal", "reference", "noisy")


def per_round(text: str, rounds: int) -> list[str]:
    """One value per round from a comma-separated list, the last repeating: "a,b" over 3 rounds is
    a, b, b. A team's make-up or its pool size may change between rounds."""
    values = [v.strip() for v in text.split(",") if v.strip()] or [text]
    return [values[min(k, len(values) - 1)] for k in range(rounds)]


def annotator_schedule(text: str, rounds: int) -> list[str]:
    """The annotator kind of each round from ``--annotator``: "minimal,lexicon" over 3 rounds is
    minimal, lexicon, lexicon. ``ValueError`` names an unknown kind."""
    kinds = per_round(text, rounds)
    unknown = [k for k in dict.fromkeys(kinds) if k not in ANNOTATORS]
    if unknown:
        raise ValueError(f"unknown annotator {', '.join(unknown) or repr(text)}: choose from {', '.join(ANNOTATORS)}")
    return kinds


def oversample_schedule(text: str, rounds: int) -> list[float]:
    """Each round's ``--oversample`` factor ("2,6": 2 in round 1, 6 after); ``ValueError`` for one below 1."""
    factors = []
    for value in per_round(text, rounds):
        try:
            factor = float(value)
        except ValueError:
            factor = float("nan")
        if not factor >= 1:
            raise ValueError(f"--oversample {value!r}: each factor must be a number of at least 1")
        factors.append(factor)
    return factors


def simulate_annotation(user: User, annotator: Annotator, *, limit: int | None = None) -> dict[str, int]:
    """Judge the items the pool offers ``user`` in its serving order (all, or the first ``limit``);
    returns how many choices and own rewrites."""
    counts = {"choices": 0, "own_rewrites": 0}
    while (limit is None or sum(counts.values()) < limit) and (assignment := next_assignment(user=user)) is not None:
        references = list(assignment.item.prompt.references)
        candidates = list(assignment.item.candidates.filter(pk__in=assignment.candidate_order))
        candidate_id, own = annotator.choose(candidates, references, assignment.item.prompt.text)
        if candidate_id is None:
            submit_judgement(user=user, assignment_id=assignment.pk, own_rewrite=own, time_spent_ms=9000)
            counts["own_rewrites"] += 1
        else:
            submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=candidate_id, time_spent_ms=5000)
            counts["choices"] += 1
    return counts


def pair_diagnostics(pairs) -> dict[str, int | float]:
    """What a round's pairs can teach, read with the evaluation's own scorers after the annotator chose
    (it never sees them): pairs whose rejected side the toxicity judge flags and the chosen not, the
    reverse, pairs that reject a candidate handing the toxic sentence back, and each side's mean
    per-sentence J with how often the chosen one scores higher (by more than ``J_MARGIN``) or lower.

    A round can only move the model's J toward what its chosen answers score: once they score about
    what the model already writes greedily, DPO has nothing better to learn from (bench/RESULTS.md)."""
    rows = list(pairs.select_related("prompt"))
    if not rows:
        return {"pairs": 0}
    inputs, references = [p.prompt.text for p in rows], [list(p.prompt.references) for p in rows]
    chosen, rejected = (
        score_rewrites(inputs, texts, references).rows
        for texts in ([p.chosen_text for p in rows], [p.rejected_text for p in rows])
    )
    sides = list(zip(chosen, rejected))
    return {
        "pairs": len(rows),
        "clean_over_flagged": sum(c.sta > r.sta for c, r in sides),
        "flagged_over_clean": sum(c.sta < r.sta for c, r in sides),
        "rejects_echo": sum(normalised_words(p.rejected_text) == normalised_words(p.prompt.text) for p in rows),
        "chosen_j": round(sum(c.j for c in chosen) / len(rows), 3),
        "rejected_j": round(sum(r.j for r in rejected) / len(rows), 3),
        "chosen_higher_j": sum(c.j - r.j > J_MARGIN for c, r in sides),
        "chosen_lower_j": sum(r.j - c.j > J_MARGIN for c, r in sides),
    }


def evaluate(version: ModelVersion) -> dict:
    if not latest_metrics(version):
        evaluation = run_evaluation(queue_evaluation(version=version, enqueue=False).pk)
        if evaluation.status != Evaluation.Status.SUCCEEDED:
            sys.exit(f"error: evaluation of {version.name} failed: {evaluation.error}")
    return latest_metrics(version)


def parse_variant(text: str) -> dict[str, float | str | bool]:
    """``rpo_alpha=1.0,beta=0.1,group_by_length=false`` → hyperparameters for ``start_training_run``."""
    variant: dict[str, float | str | bool] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if value.strip().lower() in ("true", "false"):
            variant[key.strip()] = value.strip().lower() == "true"
            continue
        try:
            variant[key.strip()] = float(value)
        except ValueError:
            variant[key.strip()] = value.strip()
    return variant


def brief(comparison: dict) -> dict:
    if "missing" in comparison:
        return comparison
    return {
        "n": comparison["n"],
        **{m: [round(d["delta"], 4), round(d["low"], 4), round(d["high"], 4)] for m, d in comparison["deltas"].items()},
    }


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def split_variant(variant: dict) -> tuple[dict, dict]:
    """A variant's data filters (``reject_own_echo=0``: DataFilters' fields, as booleans) and hyperparameters.
    ``parse_variant`` has already turned true/false into booleans."""
    fields = DataFilters.__dataclass_fields__
    filters = {k: v not in (0, 0.0, "off") for k, v in variant.items() if k in fields}
    return filters, {k: v for k, v in variant.items() if k not in fields}


def train_child(parent: ModelVersion, annotator: User, since, variant: dict) -> dict:
    filters, hyperparameters = split_variant(variant)
    run = start_training_run(
        kind="dpo", parent=parent, filters={"annotator": annotator.username, "approved_since": since, **filters},
        hyperparameters=hyperparameters, enqueue=False,
    )
    limit_cpu_threads(available_cores())  # TORCH_NUM_THREADS if set: the refill left torch on one thread
    threads = torch_threads()
    started = time.monotonic()
    run = execute_run(run.pk)
    trained = time.monotonic() - started
    if run.status != TrainingRun.Status.SUCCEEDED:
        sys.exit(f"error: run {run.pk} {run.status}: {run.error}")
    child = run.result_version
    started = time.monotonic()
    metrics = evaluate(child)
    return {
        "child": child, "name": child.name, "hyperparameters": run.hyperparameters, "data_filters": filters,
        "data_cleaning": run.data_snapshot.get("cleaning"),
        "dpo_pairs": run.data_snapshot.get("count"), "train_seconds": round(trained, 1), "threads": threads,
        "evaluate_seconds": round(time.monotonic() - started, 1), "run_metrics": run.metrics,
        "metrics": metrics, "vs_parent": brief(compare_versions(child, parent)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", help="First parent version name (it is activated to collect candidates).")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=100, help="Items to collect choices on per round.")
    parser.add_argument("--annotator", default="lexicon", help=f"One of {', '.join(ANNOTATORS)}, or one per round separated by commas (the last repeats).")
    parser.add_argument("--variant", action="append", default=[], help="DPO hyperparameters or data filters, e.g. rpo_alpha=1.0 or reject_own_echo=0 (repeatable).")
    parser.add_argument("--oversample", default="1", help="Fill the pool with this many times --prompts items; the annotator judges --prompts of them in the pool's serving order. One per round separated by commas (the last repeats).")
    parser.add_argument("--pool-order", choices=settings.POOL_ORDERS, help="POOL_ORDER for the rounds (default: the setting).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.rounds < 1 or args.prompts < 1:
        sys.exit("error: --rounds and --prompts must be at least 1")
    try:
        schedule = annotator_schedule(args.annotator, args.rounds)
        oversample = oversample_schedule(args.oversample, args.rounds)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    if args.pool_order:
        settings.POOL_ORDER = args.pool_order

    parent = ModelVersion.objects.filter(name=args.version).first()
    if parent is None:
        sys.exit(f"error: no version named {args.version!r}")
    variants = [parse_variant(v) for v in args.variant] or [{}]
    reviewer, _ = User.objects.get_or_create(username="sim-reviewer")
    make_reviewer(reviewer)
    annotators = {kind: Annotator(kind, seed=args.seed) for kind in dict.fromkeys(schedule)}
    first = parent
    report = {"start": parent.name, "start_metrics": evaluate(parent), "annotator": args.annotator,
              "lexicon_words": max(len(a.lexicon) for a in annotators.values()), "pool_order": settings.POOL_ORDER,
              "oversample": args.oversample, "rounds": []}
    for number, (kind, factor) in enumerate(zip(schedule, oversample), start=1):
        annotator = annotators[kind]
        annotator_user, _ = User.objects.get_or_create(username=f"sim-{kind}")
        activate_version(version=parent, reason="dpo_round benchmark", override=True)
        since = timezone.now()
        started = time.monotonic()
        refill_pool(parent.pk, target=math.ceil(args.prompts * factor))
        collected = time.monotonic() - started
        counts = simulate_annotation(annotator_user, annotator, limit=args.prompts)
        pairs = PreferencePair.objects.filter(judgement__user=annotator_user, status=PreferencePair.Status.PENDING)
        diagnostics = pair_diagnostics(pairs)
        approved = approve_pairs(reviewer=reviewer, pairs=pairs)
        children = [train_child(parent, annotator_user, since, dict(v)) for v in variants]
        round_report = {
            "round": number, "annotator": kind, "oversample": factor, "parent": parent.name, "items": sum(counts.values()), **counts,
            "approved_pairs": approved, "pair_diagnostics": diagnostics, "collect_seconds": round(collected, 1),
            "items_with_withheld_echo": AnnotationItem.objects.filter(
                model_version=parent, created_at__gte=since).exclude(model_echo="").count(),
            "judged_with_withheld_echo": AnnotationItem.objects.filter(
                model_version=parent, created_at__gte=since, judgements__user=annotator_user).exclude(model_echo="").count(),
            "children": [{k: v for k, v in c.items() if k != "child"} for c in children],
        }
        report["rounds"].append(round_report)
        print(json.dumps(round_report, default=str), file=sys.stderr, flush=True)
        parent = children[0]["child"]
    report["end"] = parent.name
    report["total_vs_start"] = brief(compare_versions(parent, first))
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
