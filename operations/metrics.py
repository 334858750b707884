"""Prometheus metrics, read from the database and Redis at scrape time (no counters kept in memory,
so every gunicorn worker and thread answers the same).

Queue depths and workers come from django-rq's own collector (``rq_jobs{queue,status}``,
``rq_workers``); this module adds the platform's own numbers under ``detox_``.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from django.db.models import Count, F
from django_rq.contrib.prometheus import RQCollector
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from annotations import pool
from annotations.models import Judgement, PreferencePair
from evaluation.models import Evaluation
from training.models import ModelVersion, TrainingRun

# Seconds: a tiny test run takes seconds, a CPU DPO round minutes, a GPU SFT on ParaDetox hours.
DURATION_BUCKETS = (10, 60, 300, 900, 1800, 3600, 7200, 6 * 3600)


def duration_histogram(name: str, documentation: str, rows: Iterable[tuple[str, float]]) -> HistogramMetricFamily:
    """A histogram with one ``kind`` label from (kind, seconds) rows."""
    histogram = HistogramMetricFamily(name, documentation, labels=["kind"])
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in rows:
        by_kind.setdefault(kind, []).append(seconds)
    for kind, durations in sorted(by_kind.items()):
        buckets = [(str(bound), sum(1 for d in durations if d <= bound)) for bound in DURATION_BUCKETS]
        buckets.append(("+Inf", len(durations)))
        histogram.add_metric([kind], buckets, sum_value=sum(durations))
    return histogram


def finished_durations(queryset, kind_field: str | None) -> list[tuple[str, float]]:
    rows = queryset.filter(started_at__isnull=False, finished_at__isnull=False).annotate(took=F("finished_at") - F("started_at"))
    fields = ["took", kind_field] if kind_field else ["took"]
    return [(row[1] if kind_field else "evaluation", row[0].total_seconds()) for row in rows.values_list(*fields)]


class DetoxCollector:
    """Pool, annotation, review, training and evaluation numbers."""

    def collect(self) -> Iterator[Metric]:
        active = ModelVersion.objects.active()
        info = GaugeMetricFamily("detox_active_version", "1 for the active model version", labels=["version"])
        ready = GaugeMetricFamily("detox_pool_ready_items", "Items ready to annotate for the active version", labels=["version"])
        if active is not None:
            info.add_metric([active.name], 1)
            ready.add_metric([active.name], pool.ready_count(active))
        yield info
        yield ready

        yield self.counts("detox_judgements", "Judgements by kind", "kind", Judgement.objects, Judgement.Kind.values)
        yield self.counts("detox_preference_pairs", "Preference pairs by review status", "status", PreferencePair.objects, PreferencePair.Status.values)
        yield self.counts("detox_training_runs", "Training runs by status", "status", TrainingRun.objects, TrainingRun.Status.values)
        yield self.counts("detox_evaluations", "Evaluations by status", "status", Evaluation.objects, Evaluation.Status.values)

        succeeded_runs = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        yield duration_histogram(
            "detox_training_run_duration_seconds", "Wall time of succeeded training runs", finished_durations(succeeded_runs, "kind")
        )
        last = GaugeMetricFamily("detox_training_run_last_duration_seconds", "Wall time of the latest succeeded run", labels=["kind"])
        for kind in TrainingRun.Kind.values:
            run = succeeded_runs.filter(kind=kind, started_at__isnull=False, finished_at__isnull=False).order_by("-finished_at").first()
            if run is not None:
                last.add_metric([kind], (run.finished_at - run.started_at).total_seconds())
        yield last
        yield duration_histogram(
            "detox_evaluation_duration_seconds",
            "Wall time of succeeded evaluations",
            finished_durations(Evaluation.objects.filter(status=Evaluation.Status.SUCCEEDED), None),
        )

    @staticmethod
    def counts(name: str, documentation: str, label: str, manager, values: Iterable[str]) -> GaugeMetricFamily:
        found = Counter({row[label]: row["n"] for row in manager.values(label).annotate(n=Count("id")).order_by()})
        gauge = GaugeMetricFamily(name, documentation, labels=[label])
        for value in values:  # every value, zeros included, so a dashboard's series never vanish
            gauge.add_metric([value], found[value])
        return gauge


def render_metrics(accept_header: str = "") -> tuple[bytes, str]:
    """The exposition text (or OpenMetrics, if asked) and its content type."""
    registry = CollectorRegistry()
    registry.register(RQCollector())
    registry.register(DetoxCollector())
    encoder, content_type = choose_encoder(accept_header)
    return encoder(registry), content_type
