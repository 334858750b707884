"""DetoxifierAI's ``user_preferences.json`` in and out: a JSON list of ``{"toxic", "chosen", "rejected": [...]}``.

Teams moving from DetoxifierAI bring their best-of-N choices along. An imported entry becomes what an
annotation would have made: a prompt, an item whose candidates carry provenance ``imported``, the
importing user's judgement, and one pending preference pair per rejected text (reviewers approve them
like any other). An entry's key (toxic, chosen, rejected texts) is stored with its candidates, so a
re-import never duplicates anything.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from core.roles import make_system_account

from .importers import PromptRecord, RowError, import_prompts
from .models import (
    AnnotationItem,
    Assignment,
    Candidate,
    Judgement,
    ModelVersionRef,
    PreferencePair,
    Prompt,
    normalise_text,
    text_hash,
)

FORMAT = "detoxifierai"
FIELDS = ("toxic", "chosen", "rejected")
DEFAULT_IMPORTER = "detoxifierai"  # the user the imported judgements belong to


class PreferenceFileError(Exception):
    """The file cannot be read as a whole (not JSON, not a list); the message says where."""


@dataclass(frozen=True)
class PreferenceEntry:
    toxic: str
    chosen: str
    rejected: tuple[str, ...]
    line: int = 0

    @property
    def key(self) -> str:
        """Identity of the entry across imports: its normalised texts, rejected order ignored."""
        canonical = json.dumps([text_hash(self.toxic), normalise_text(self.chosen), sorted(self.rejected)])
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class PreferenceImportReport:
    entries: int = 0
    already_present: int = 0
    prompts_created: int = 0
    pairs_created: int = 0
    heldout: int = 0  # entries on held-out prompts: kept, but never trained on or exported
    errors: list[RowError] = field(default_factory=list)

    @property
    def valid(self) -> int:
        return self.entries + self.already_present


def _entries_with_lines(text: str) -> Iterator[tuple[int, Any]]:
    """Each element of the top-level JSON list with the line it starts on (for error messages)."""
    decoder = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    if not text[start:].startswith("["):
        raise PreferenceFileError("expected a JSON list of {toxic, chosen, rejected} objects")
    position = start + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            raise PreferenceFileError("the JSON list is not closed with ]")
        if text[position] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise PreferenceFileError(f"line {exc.lineno}: invalid JSON ({exc.msg})") from exc
        yield text.count("\n", 0, position) + 1, value
        position = end


def _entry(value: Any, line: int) -> PreferenceEntry | RowError:
    if not isinstance(value, dict):
        return RowError(line, "expected an object with toxic, chosen and rejected")
    toxic, chosen, rejected = value.get("toxic"), value.get("chosen"), value.get("rejected")
    for name, text in (("toxic", toxic), ("chosen", chosen)):
        if not isinstance(text, str) or not text.strip():
            return RowError(line, f"{name!r} is missing or not a non-empty string")
    if isinstance(rejected, str):
        rejected = [rejected]
    if not isinstance(rejected, list) or not all(isinstance(r, str) for r in rejected):
        return RowError(line, "'rejected' must be a list of strings")
    chosen = normalise_text(chosen)
    texts = tuple(dict.fromkeys(t for t in (normalise_text(r) for r in rejected) if t and t != chosen))
    if not texts:
        return RowError(line, "no rejected text that differs from 'chosen'")
    return PreferenceEntry(normalise_text(toxic), chosen, texts, line)


def read_preferences(path: str | Path) -> Iterator[PreferenceEntry | RowError]:
    """Entries of a DetoxifierAI ``user_preferences.json``, malformed ones as line-numbered ``RowError``s.

    Raises ``PreferenceFileError`` when the file is not a JSON list, ``OSError`` when it cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    for line, value in _entries_with_lines(text):
        yield _entry(value, line)


def import_preferences(
    rows: Iterable[PreferenceEntry | RowError], *, version: ModelVersionRef, importer: str = DEFAULT_IMPORTER, source: str = FORMAT
) -> PreferenceImportReport:
    """Save entries as prompts, imported candidates of ``version``, judgements by the ``importer`` user and
    pending pairs. Entries already imported (same key) are counted, not saved again."""
    report = PreferenceImportReport()
    entries: dict[str, PreferenceEntry] = {}
    for row in rows:
        if isinstance(row, RowError):
            report.errors.append(row)
        elif row.key in entries:
            report.already_present += 1
        else:
            entries[row.key] = row
    if not entries:
        return report
    report.prompts_created = import_prompts((PromptRecord(e.toxic, (), e.line) for e in entries.values()), source=source).created
    user = _importer(importer)
    done = set(
        Candidate.objects.filter(decoding__import_key__in=list(entries)).values_list("decoding__import_key", flat=True)
    )
    prompts = {p.text_hash: p for p in Prompt.objects.filter(text_hash__in={text_hash(e.toxic) for e in entries.values()})}
    for key, entry in entries.items():
        if key in done:
            report.already_present += 1
            continue
        prompt = prompts[text_hash(entry.toxic)]
        report.pairs_created += _save_entry(entry, prompt=prompt, version=version, user=user, source=source)
        report.entries += 1
        report.heldout += prompt.is_heldout
    return report


def _importer(username: str):
    """The account imported judgements belong to; one created here is a system account (nobody signs
    in as it, and quality reports do not count it as an annotator). An existing account is used as it is."""
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        make_system_account(user)
    return user


def _save_entry(entry: PreferenceEntry, *, prompt: Prompt, version: ModelVersionRef, user, source: str) -> int:
    """One item, its candidates (chosen first), the judgement and a pending pair per rejected text."""
    provenance = {"provenance": "imported", "format": FORMAT, "source": source, "import_key": entry.key}
    with transaction.atomic():
        item = AnnotationItem.objects.create(prompt=prompt, model_version=version, judgements_needed=1)
        candidates = [
            Candidate.objects.create(item=item, model_version=version, text=text, decoding=provenance, seed=0, sample_index=i)
            for i, text in enumerate((entry.chosen, *entry.rejected))
        ]
        chosen, rejected = candidates[0], candidates[1:]
        assignment = Assignment.objects.create(user=user, item=item, candidate_order=[c.id for c in candidates])
        judgement = Judgement.objects.create(
            assignment=assignment, user=user, item=item, kind=Judgement.Kind.CHOICE, chosen_candidate=chosen, chosen_position=1
        )
        PreferencePair.objects.bulk_create(
            PreferencePair(
                judgement=judgement,
                prompt=prompt,
                model_version=version,
                source=PreferencePair.Source.IMPORTED,
                chosen_candidate=chosen,
                rejected_candidate=candidate,
                chosen_text=chosen.text,
                original_chosen_text=chosen.text,
                rejected_text=candidate.text,
            )
            for candidate in rejected
        )
    return len(rejected)


def preference_entries(pairs: QuerySet[PreferencePair]) -> list[dict[str, Any]]:
    """``pairs`` in DetoxifierAI's shape: one entry per judgement and chosen text, its rejected texts in pair order."""
    grouped: dict[tuple[int, str], dict[str, Any]] = {}
    for pair in pairs.select_related("prompt").order_by("id").iterator(chunk_size=2000):
        entry = grouped.setdefault(
            (pair.judgement_id, pair.chosen_text), {"toxic": pair.prompt.text, "chosen": pair.chosen_text, "rejected": []}
        )
        entry["rejected"].append(pair.rejected_text)
    return list(grouped.values())
