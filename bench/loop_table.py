"""The learning-loop table: every version's latest evaluation with 95 % bootstrap intervals, and the
human references' own scores on the same metric as the anchor; prints JSON (``--markdown`` a table).

    DATABASE_URL=... MODEL_STORE=... python bench/loop_table.py [--markdown]

The anchor scores the first human reference of every held-out prompt as if a model had written it
(STA, SIM, FL and J by the evaluation's own scorers; chrF is left out, since the reference is its own
target). Quality targets are fractions of that J.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "detoxsite.settings")

import django  # noqa: E402

django.setup()

from evaluation.services import heldout_prompts, latest_evaluation, score_rewrites  # noqa: E402
from training.models import ModelVersion, TrainingRun  # noqa: E402

METRICS = ("sta", "sim", "fl", "chrf", "j")


def interval(values: list[float], *, resamples: int = 2000, seed: int = 0) -> list[float]:
    """[mean, low, high]: percentile bootstrap 95 % interval of the mean over prompts."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(data.mean()), 4), round(float(low), 4), round(float(high), 4)]


def version_row(version: ModelVersion) -> dict | None:
    evaluation = latest_evaluation(version)
    if evaluation is None:
        return None
    rows = list(evaluation.outputs.values(*METRICS))
    run = TrainingRun.objects.filter(result_version=version).first()
    row = {
        "version": version.name, "parent": version.parent.name if version.parent_id else None,
        "n": len(rows), "classifier": evaluation.meta.get("classifier"),
    }
    for metric in METRICS:
        values = [r[metric] for r in rows if r[metric] is not None]
        row[metric] = interval(values) if values else None
    if run is not None:
        row["data"] = f"{run.kind} {run.rows_used} rows"
        if run.started_at and run.finished_at:
            row["minutes"] = round((run.finished_at - run.started_at).total_seconds() / 60, 1)
    return row


def references_row() -> dict:
    prompts = list(heldout_prompts())
    inputs = [p.text for p in prompts]
    outputs = [p.references[0] for p in prompts]
    report = score_rewrites(inputs, outputs, [p.references for p in prompts])
    row = {"version": "human references (first)", "n": len(prompts), "classifier": report.meta["classifier"]}
    for metric in ("sta", "sim", "fl", "j"):
        row[metric] = interval([getattr(r, metric) for r in report.rows])
    return row


def markdown(rows: list[dict]) -> str:
    def cell(value) -> str:
        return "-" if value is None else f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"

    lines = ["| version | data | minutes | STA | SIM | FL | chrF | J |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['version']} | {row.get('data', '-')} | {row.get('minutes', '-')} | "
            + " | ".join(cell(row.get(m)) for m in METRICS) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [references_row()]
    rows += [row for v in ModelVersion.objects.order_by("created_at") if (row := version_row(v))]
    anchor = rows[0]["j"][0]
    for row in rows[1:]:
        row["j_vs_references"] = round(row["j"][0] / anchor, 3) if anchor else None
    print(markdown(rows) if args.markdown else json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
