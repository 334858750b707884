"""Read toxic prompts (and human references) from ParaDetox TSVs, CSV, JSONL or a hub dataset.

Readers yield ``PromptRecord``s or ``RowError``s with line numbers; ``import_prompts`` saves them
without ever duplicating a sentence, marking the deterministic held-out split on the way.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .models import Prompt, is_heldout_hash, normalise_text, text_hash

FORMATS = ("paradetox", "cannot_rewrite", "csv", "jsonl")
MAX_PROMPT_CHARS = 2000
csv.field_size_limit(10_000_000)


@dataclass(frozen=True)
class PromptRecord:
    text: str
    references: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0
    updated_references: int = 0
    heldout: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return self.created + self.existing


def skipped_lines(errors: list[RowError], *, what: str = "rows", limit: int = 20) -> list[str]:
    """What an import command prints about malformed input: the first ``limit`` errors with their line, then a count."""
    lines = [f"skipped {error}" for error in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more malformed {what}")
    return lines


def _clean(text: str | None) -> str:
    text = normalise_text(text or "")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text


def _record(text: str | None, references: Iterable[str | None], line: int) -> PromptRecord | RowError:
    toxic = _clean(text)
    if not toxic:
        return RowError(line, "empty toxic text")
    if len(toxic) > MAX_PROMPT_CHARS:
        return RowError(line, f"toxic text longer than {MAX_PROMPT_CHARS} characters")
    refs = tuple(dict.fromkeys(r for r in (_clean(x) for x in references) if r))
    return PromptRecord(toxic, refs, line)


def _tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            yield reader.line_num, row


def read_paradetox(path: Path) -> Iterator[PromptRecord | RowError]:
    """``toxic  neutral1  neutral2  neutral3`` with a header row (ParaDetox's own layout)."""
    for line, row in _tsv_rows(path):
        if len(row) < 2:
            yield RowError(line, f"expected a toxic sentence and at least one neutral rewrite, got {len(row)} column(s)")
            continue
        yield _record(row[0], row[1:4], line)


def read_cannot_rewrite(path: Path) -> Iterator[PromptRecord | RowError]:
    """``index  INPUT:toxic_comment  OUTPUT:reasons`` (sentences crowd workers could not rewrite)."""
    for line, row in _tsv_rows(path):
        if len(row) < 2:
            yield RowError(line, f"expected an index and a toxic comment, got {len(row)} column(s)")
            continue
        yield _record(row[1], (), line)


def read_csv(path: Path) -> Iterator[PromptRecord | RowError]:
    """A CSV with a ``toxic`` (or ``text``) column and optional ``neutral*``/``reference*`` columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        text_column = next((c for c in ("toxic", "text") if c in columns), None)
        if text_column is None:
            yield RowError(1, f"no 'toxic' or 'text' column in header {columns}")
            return
        ref_columns = [c for c in columns if c.startswith(("neutral", "reference"))]
        for row in reader:
            yield _record(row.get(text_column), (row.get(c) for c in ref_columns), reader.line_num)


def read_jsonl(path: Path) -> Iterator[PromptRecord | RowError]:
    """One JSON object per line: ``{"toxic": "...", "references": ["..."]}`` (``text`` also accepted)."""
    with open(path, encoding="utf-8") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                yield RowError(line, f"invalid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                yield RowError(line, "expected a JSON object")
                continue
            refs = obj.get("references") or [v for k, v in sorted(obj.items()) if k.startswith("neutral")]
            if isinstance(refs, str):
                refs = [refs]
            yield _record(obj.get("toxic") or obj.get("text"), refs, line)


READERS = {"paradetox": read_paradetox, "cannot_rewrite": read_cannot_rewrite, "csv": read_csv, "jsonl": read_jsonl}


def read_hub_dataset(name: str, split: str = "train") -> Iterator[PromptRecord | RowError]:
    """Rows of a hub dataset with ParaDetox's columns (``en_toxic_comment``/``toxic`` + neutrals).

    Needs network access; offline it raises ``OSError`` with a message saying to pass a file path.
    """
    try:
        import datasets

        dataset = datasets.load_dataset(name, split=split)
    except Exception as exc:  # datasets raises many types when offline
        raise OSError(
            f"Could not load dataset {name!r} from the hub ({type(exc).__name__}: {exc}). "
            "This machine may be offline: download the file and pass its path instead."
        ) from exc
    for index, row in enumerate(dataset, start=1):
        text = row.get("en_toxic_comment") or row.get("toxic")
        refs = [v for k, v in row.items() if "neutral" in k and isinstance(v, str)]
        yield _record(text, refs, index)


def read_prompts(path: str | Path, fmt: str) -> Iterator[PromptRecord | RowError]:
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return READERS[fmt](path)


def import_prompts(rows: Iterable[PromptRecord | RowError], *, source: str, batch_size: int = 1000) -> ImportReport:
    """Save new prompts and merge new references into existing ones; malformed rows go to the report."""
    report = ImportReport()
    batch: dict[str, PromptRecord] = {}
    for row in rows:
        if isinstance(row, RowError):
            report.errors.append(row)
            continue
        digest = text_hash(row.text)
        if digest in batch:
            batch[digest] = PromptRecord(row.text, tuple(dict.fromkeys(batch[digest].references + row.references)))
            continue
        batch[digest] = row
        if len(batch) >= batch_size:
            _save_batch(batch, source, report)
            batch = {}
    _save_batch(batch, source, report)
    return report


def _save_batch(batch: dict[str, PromptRecord], source: str, report: ImportReport) -> None:
    if not batch:
        return
    with transaction.atomic():
        existing = {p.text_hash: p for p in Prompt.objects.select_for_update().filter(text_hash__in=batch)}
        new = []
        for digest, record in batch.items():
            prompt = existing.get(digest)
            if prompt is None:
                heldout = is_heldout_hash(digest, settings.HELDOUT_PERCENT)
                report.heldout += heldout
                new.append(
                    Prompt(
                        text=record.text,
                        text_hash=digest,
                        source=source,
                        references=list(record.references),
                        is_heldout=heldout,
                    )
                )
                continue
            report.existing += 1
            merged = list(dict.fromkeys(prompt.references + list(record.references)))
            if merged != prompt.references:
                prompt.references = merged
                prompt.save(update_fields=["references"])
                report.updated_references += 1
        Prompt.objects.bulk_create(new, ignore_conflicts=True)
        report.created += len(new)
