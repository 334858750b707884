"""manage.py train sft|dpo [options]: start a training run, by default here with a tqdm progress bar."""
from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.actions import ActionRefused
from training import services
from training.executor import execute_run
from training.ml.hyperparameters import tunable_hyperparameters
from training.models import ModelVersion, TrainingRun

HYPERPARAMETERS = tunable_hyperparameters()
FLAG_ALIASES = {"use_lora": ("--lora",), "learning_rate": ("--lr",)}  # the short names users know


class Command(BaseCommand):
    help = "Train a new model version (SFT on references + gold rewrites, or DPO on approved pairs)."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=["sft", "dpo"])
        parser.add_argument("--parent", help="Parent version name (default: the active version).")
        parser.add_argument("--queue", action="store_true", help="Queue it for the training worker instead of running here.")
        data = parser.add_argument_group("data")
        data.add_argument("--approved-since", help="Only pairs approved at/after this ISO date or datetime.")
        data.add_argument("--annotator", help="Only this annotator's pairs.")
        data.add_argument("--source", help="SFT: prompt source (e.g. paradetox); DPO: pair source (annotation, arena, imported).")
        data.add_argument("--no-references", action="store_true", help="SFT: skip imported human references.")
        data.add_argument("--no-gold-rewrites", action="store_true", help="SFT: skip approved own rewrites.")
        data.add_argument(
            "--any-version", action="store_true",
            help="DPO: also pairs sampled from other versions than the parent (default: the parent's only).",
        )
        data.add_argument(
            "--no-input-rejections", action="store_true",
            help="DPO: do not add a pair rejecting the toxic input for each chosen answer.",
        )
        data.add_argument(
            "--no-own-echo-rejections", action="store_true",
            help="DPO: those pairs reject the stored prompt even where the pool kept the model's own echo of it.",
        )
        where = data.add_mutually_exclusive_group()
        where.add_argument(
            "--input-rejections-only-echoed", dest="input_rejections_only_echoed", action="store_const", const=True,
            help="DPO: add those pairs only on prompts where the model echoed (the pool kept an echo). Default: "
            "automatic, every prompt after an SFT or base parent, only echoed prompts after a DPO parent.",
        )
        where.add_argument(
            "--input-rejections-everywhere", dest="input_rejections_only_echoed", action="store_const", const=False,
            help="DPO: add those pairs on every prompt, also after a DPO parent.",
        )
        hp = parser.add_argument_group("hyperparameters (defaults from training/ml/sft.py and dpo.py)")
        for param in HYPERPARAMETERS:
            flags = [f"--{param.name.replace('_', '-')}", *FLAG_ALIASES.get(param.name, ())]
            only = "" if len(param.kinds) > 1 else f"{param.kinds[0].upper()}: "
            options: dict = dict(dest=param.name, help=(only + param.describe()).replace("%", "%%"))
            if param.type is bool:  # --name / --no-name, so a setting that defaults to on can be turned off
                hp.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, **options)
            else:
                hp.add_argument(*flags, type=param.type, choices=param.choices or None, **options)

    def handle(self, *args, kind, parent=None, queue=False, **opts):
        parent_version = ModelVersion.objects.filter(name=parent).first() if parent else ModelVersion.objects.active()
        if parent_version is None:
            raise CommandError(f"No such parent version: {parent}" if parent else "No active version to train from.")
        hyperparameters = {
            hp.name: opts[hp.name] for hp in HYPERPARAMETERS if kind in hp.kinds and opts.get(hp.name) is not None
        }
        filters = {
            "approved_since": opts["approved_since"],
            "annotator": opts["annotator"],
            "source": opts["source"],
            "include_references": not opts["no_references"],
            "include_gold_rewrites": not opts["no_gold_rewrites"],
            "any_version": opts["any_version"] or None,
            "reject_input": False if opts["no_input_rejections"] else None,
            "reject_own_echo": False if opts["no_own_echo_rejections"] else None,
            "reject_input_only_echoed": opts["input_rejections_only_echoed"],
        }
        try:
            run = services.start_training_run(
                kind=kind, parent=parent_version, filters={k: v for k, v in filters.items() if v is not None},
                hyperparameters=hyperparameters, enqueue=queue,
            )
        except ActionRefused as exc:
            raise CommandError(exc.message) from exc
        rows = run.data_snapshot["count"]
        subset = hyperparameters.get("subset_size")
        sample = f"a seeded sample of {subset} of {rows}" if subset and subset < rows else str(rows)
        self.stdout.write(f"run {run.pk}: {kind} from {parent_version.name} on {sample} rows")
        if queue:
            self.stdout.write(self.style.SUCCESS(f"queued on 'training' as job {run.rq_job_id}"))
            return
        bar = tqdm(total=None, unit="step", desc=f"{kind} run {run.pk}")

        def echo(update):
            bar.total = update.total_steps
            bar.n = update.step
            if update.loss is not None:
                bar.set_postfix(loss=f"{update.loss:.4f}")
            bar.refresh()

        run = execute_run(run.pk, echo=echo)
        bar.close()
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(self.style.SUCCESS(
            f"run {run.pk} succeeded: new version {run.result_version.name} (inactive; activate it on the versions page)"
        ))
