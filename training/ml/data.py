"""Training data: validation, snapshot hashing, JSONL snapshots and TRL-ready datasets.

Records are plain dicts (``{"prompt", "completion"}`` for SFT, ``{"prompt", "chosen", "rejected"}``
for DPO) holding raw text; the builders wrap the prompt in the shared template and end each answer
with the eos token, so a trained model learns to stop where generation expects it to.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .evaluate import DEFAULT_CLASSIFIER
from .prompting import render_prompt

SFT_FIELDS = ("prompt", "completion")
DPO_FIELDS = ("prompt", "chosen", "rejected")
logger = logging.getLogger(__name__)


def snapshot_hash(records: Sequence[dict[str, Any]]) -> str:
    """sha256 of the records as canonical JSON: key order inside a record is irrelevant, record order counts."""
    canonical = json.dumps(list(records), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _validate(records: Sequence[dict[str, Any]], fields: tuple[str, ...], kind: str) -> None:
    if not records:
        raise ValueError(f"{kind} data is empty: at least one record is needed")
    for index, record in enumerate(records):
        for name in fields:
            value = record.get(name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{kind} record {index}: field {name!r} is missing or blank")


def validate_sft_records(records: Sequence[dict[str, Any]]) -> None:
    """Raise ``ValueError`` unless every record has non-blank ``prompt`` and ``completion`` strings."""
    _validate(records, SFT_FIELDS, "SFT")


def validate_dpo_records(records: Sequence[dict[str, Any]]) -> None:
    """Raise ``ValueError`` unless every record has non-blank, distinct ``chosen``/``rejected`` answers.

    Identical answers carry no preference signal (the DPO loss is constant), so they are refused.
    """
    _validate(records, DPO_FIELDS, "DPO")
    for index, record in enumerate(records):
        if record["chosen"].strip() == record["rejected"].strip():
            raise ValueError(f"DPO record {index}: 'chosen' and 'rejected' are identical")


def _answer(tokenizer: Any, text: str) -> str:
    # TRL appends eos only when missing, so adding it here never doubles it.
    return text.strip() + tokenizer.eos_token


def sft_rows(records: Sequence[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """Prompt/completion rows in TRL's (non-conversational) prompt-completion format."""
    validate_sft_records(records)
    return [
        {"prompt": render_prompt(tokenizer, r["prompt"]), "completion": _answer(tokenizer, r["completion"])}
        for r in records
    ]


def dpo_rows(records: Sequence[dict[str, Any]], tokenizer: Any) -> list[dict[str, str]]:
    """Prompt/chosen/rejected rows in TRL's (non-conversational) preference format."""
    validate_dpo_records(records)
    return [
        {
            "prompt": render_prompt(tokenizer, r["prompt"]),
            "chosen": _answer(tokenizer, r["chosen"]),
            "rejected": _answer(tokenizer, r["rejected"]),
        }
        for r in records
    ]


def build_sft_dataset(records: Sequence[dict[str, Any]], tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with ``prompt``/``completion`` columns (loss on the completion only)."""
    from datasets import Dataset

    return Dataset.from_list(sft_rows(records, tokenizer))


def build_dpo_dataset(records: Sequence[dict[str, Any]], tokenizer: Any) -> Any:
    """A ``datasets.Dataset`` with ``prompt``/``chosen``/``rejected`` columns."""
    from datasets import Dataset

    return Dataset.from_list(dpo_rows(records, tokenizer))


# --- cleaning: what a run should not learn from -----------------------------------------------------

# A reference whose normalised characters match the input's this closely is an echo. Measured on
# ParaDetox (18,742 references): 146 have the input's very words; at 0.98 the band already holds real
# one-word edits ("... busy with shit" -> "... busy with it"), so the bar sits above them.
ECHO_CHAR_RATIO = 0.99
TOXICITY_THRESHOLD = 0.5  # as evaluation's STA: P(toxic) at or above it still counts as toxic


def normalised_words(text: str) -> str:
    """Lower-cased words without punctuation or spacing differences: the key texts are compared by."""
    from .evaluate import _words

    return " ".join(_words(text))


def is_echo_of_input(toxic: str, rewrite: str, *, char_ratio: float = ECHO_CHAR_RATIO) -> bool:
    """The rewrite repeats the input: the same words (evaluation's FL echo check, which scores it 0),
    the whole input inside it, or characters at least ``char_ratio`` similar after normalising."""
    import difflib

    from .evaluate import _words, is_echo

    toxic_words, rewrite_words = _words(toxic), _words(rewrite)
    if is_echo(rewrite_words, toxic_words):
        return True
    a, b = " ".join(toxic_words), " ".join(rewrite_words)
    return bool(a and b) and difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= char_ratio


# A one-word "rewrite" of a sentence this long is a fragment, not a detoxification: the base model's
# one-word samples were a name, a stage direction or a number ("Ava,", "*laughs*", "101:11:10": 4 of
# 954 candidates kept on 320 pool items), and 28 of ParaDetox's 18,742 references are one word,
# mostly annotation noise ("78", "TRUE", "Two").
FRAGMENT_MIN_INPUT_WORDS = 3


def is_fragment(toxic: str, rewrite: str) -> bool:
    """The rewrite is a single word while the input is a sentence: nothing an annotator could choose."""
    return len(rewrite.split()) < 2 and len(toxic.split()) >= FRAGMENT_MIN_INPUT_WORDS


def load_cleaning_classifier(spec: str = DEFAULT_CLASSIFIER) -> tuple[Any | None, str]:
    """The toxicity classifier ``spec`` names, loaded as evaluation loads it (profanity-check, a judge
    directory from ``judge.train_judge``, a transformers model), and the name cleaning records.

    When ``spec`` cannot be loaded, profanity-check stands in and the name says why; (None, why) when
    neither loads, so cleaning skips the filter and says so instead of failing the run.
    """
    from .evaluate import load_toxicity_classifier

    problems = []
    for choice in dict.fromkeys((spec, DEFAULT_CLASSIFIER)):
        try:
            classifier = load_toxicity_classifier(choice)
        except Exception as exc:  # a model path can fail in many ways; the run records which and goes on
            problems.append(f"{choice}: {exc}")
            continue
        return classifier, classifier.name + (f" ({problems[0]})" if problems else "")
    return None, f"unavailable ({'; '.join(problems)})"


def drop_echoes(
    records: Sequence[dict[str, Any]], *, char_ratio: float = ECHO_CHAR_RATIO
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drop SFT references that echo their input (``is_echo_of_input``). Returns (kept, counts)."""
    kept = [r for r in records if not is_echo_of_input(r["prompt"], r["completion"], char_ratio=char_ratio)]
    return kept, {"references": len(records), "dropped_echo": len(records) - len(kept)}


def drop_toxic(
    records: Sequence[dict[str, Any]],
    *,
    toxicity: Any | None = None,
    classifier: str = DEFAULT_CLASSIFIER,
    threshold: float = TOXICITY_THRESHOLD,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drop SFT references whose completion the toxicity classifier still flags (P(toxic) >= threshold).

    ``toxicity`` (texts -> P(toxic)) is used as given; without it ``classifier`` is loaded by
    ``load_cleaning_classifier`` (the platform passes the judge its evaluation scores STA with). The
    counts name the filter (``toxicity_filter``). Returns (kept, counts).
    """
    name = getattr(toxicity, "name", "custom") if toxicity is not None else None
    if toxicity is None:
        toxicity, name = load_cleaning_classifier(classifier)
    if toxicity is None:
        logger.warning("SFT references not checked for toxicity: classifier %s", name)
        return list(records), {"dropped_toxic": 0, "toxicity_filter": name}
    probabilities = list(toxicity([r["completion"] for r in records])) if records else []
    clean = [r for r, p in zip(records, probabilities) if p < threshold]
    return clean, {"dropped_toxic": len(records) - len(clean), "toxicity_filter": name, "toxicity_threshold": threshold}


def reconcile_preferences(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Deduplicate preference records and settle disagreements between annotators.

    Records are compared by normalised text (``normalised_words``). For each prompt and each two
    texts, every annotator votes once for the order they chose (a record's ``annotator``; without
    one, each record is its own voter); the order with more votes is kept as one record, ties drop
    both orders. The kept record is the first one of the winning order with ``pair_ids`` listing
    every record merged into it. Records whose two texts normalise alike carry no preference and go.
    Returns (records in first-seen order without ``annotator``, counts).
    """
    groups: dict[tuple[str, frozenset[str]], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    position: dict[int, int] = {}  # id(record) -> index, to return records in first-seen order
    identical = 0
    for index, record in enumerate(records):
        position[id(record)] = index
        chosen, rejected = normalised_words(record["chosen"]), normalised_words(record["rejected"])
        if chosen == rejected:
            identical += 1
            continue
        key = (normalised_words(record["prompt"]), frozenset((chosen, rejected)))
        groups.setdefault(key, {}).setdefault((chosen, rejected), []).append(record)

    kept: list[tuple[int, dict[str, Any]]] = []
    duplicates = outvoted = conflicts = 0
    for orders in groups.values():
        votes = {
            order: len({r.get("annotator") or ("record", id(r)) for r in group}) for order, group in orders.items()
        }
        ranked = sorted(orders, key=lambda order: -votes[order])
        if len(ranked) == 2 and votes[ranked[0]] == votes[ranked[1]]:
            conflicts += sum(len(group) for group in orders.values())
            continue
        winner = orders[ranked[0]]
        outvoted += sum(len(orders[order]) for order in ranked[1:])
        duplicates += len(winner) - 1
        first = {k: v for k, v in winner[0].items() if k != "annotator"}
        ids = [r["pair_id"] for r in winner if "pair_id" in r]
        if ids:
            first["pair_ids"] = ids
        kept.append((position[id(winner[0])], first))
    kept.sort(key=lambda item: item[0])
    counts = {
        "pairs": len(records),
        "kept": len(kept),
        "duplicates": duplicates,
        "outvoted": outvoted,
        "conflicts_dropped": conflicts,
        "identical_dropped": identical,
    }
    return [record for _, record in kept], counts


# Marks a DPO record the platform derived from an annotated one rather than a pair someone judged.
REJECTS_INPUT = "rejects the input"


def add_input_rejections(
    records: Sequence[dict[str, Any]], echoes: Mapping[str, str] | None = None, *, only_echoed: bool = False
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``records`` plus, for each prompt and chosen answer, a pair that rejects the toxic input itself.

    Handing the input back is the model's commonest failure (evaluation scores it FL 0), yet no
    annotated pair rejects it: the pool drops candidates that repeat the prompt, so annotators never
    see one. DPO that pushes down only the candidates people saw then moves probability toward copying
    (bench/RESULTS.md, learning loop: FL -0.057, SIM +0.028 in a round on representative prompts).
    Where ``echoes`` (prompt -> the model's own echo of it) has one, that text is rejected instead of the
    stored prompt: the model re-cases ParaDetox's lower-cased, tokenised sentences, so its echo is the
    text it would actually write. With ``only_echoed``, only prompts in ``echoes`` get such a pair: once
    the model rarely echoes, rejecting the input on every prompt keeps pushing it away from the input's
    wording, which costs SIM. Added records carry ``derived`` and the ``pair_ids`` they come from.
    """
    echoes = echoes or {}
    seen: set[tuple[str, str]] = set()
    added: list[dict[str, Any]] = []
    for record in records:
        key = (normalised_words(record["prompt"]), normalised_words(record["chosen"]))
        if key in seen or is_echo_of_input(record["prompt"], record["chosen"]):
            continue
        if only_echoed and record["prompt"] not in echoes:
            continue
        seen.add(key)
        ids = record.get("pair_ids") or ([record["pair_id"]] if "pair_id" in record else [])
        added.append({
            "prompt": record["prompt"], "chosen": record["chosen"],
            "rejected": echoes.get(record["prompt"]) or record["prompt"],
            "derived": REJECTS_INPUT, **({"pair_ids": list(ids)} if ids else {}),
        })
    own = sum(1 for r in added if r["rejected"] != r["prompt"])
    return [*records, *added], {"input_rejections": len(added), "own_echo_rejections": own}
