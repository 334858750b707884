"""Near-duplicate detection for sampled candidates.

Two rewrites that differ only in case, spacing, quotes or the punctuation around them ("They are
murderers." / "they are Murderers") are the same choice for an annotator; ``candidate_key`` maps
both to one key so the pool can keep one of them.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable

# Characters stripped from both ends: ASCII punctuation plus the usual typographic ones.
_EDGE = string.punctuation + string.whitespace + "\u2026\u2018\u2019\u201c\u201d\u00ab\u00bb\u2013\u2014\u00a1\u00bf"
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([^\w\s])")
_REPEATED_PUNCT = re.compile(r"([^\w\s])\1+")


def candidate_key(text: str) -> str:
    """A key equal for texts that differ only in case, whitespace, quote style, repeated
    punctuation ("!!" / "!") and the punctuation or spaces at either end.

    Inner words and inner punctuation still count: "you are wrong" and "you are not wrong" differ.
    """
    key = unicodedata.normalize("NFKC", text or "").translate(_QUOTES).casefold()
    key = " ".join(key.split())
    key = _SPACE_BEFORE_PUNCT.sub(r"\1", key)  # "idiot ." -> "idiot."
    key = _REPEATED_PUNCT.sub(r"\1", key)
    return key.strip(_EDGE)


def dedupe(texts: Iterable[str]) -> list[str]:
    """``texts`` without near-duplicates (first one of each ``candidate_key`` kept, order kept;
    texts whose key is empty are dropped)."""
    seen: set[str] = set()
    kept: list[str] = []
    for text in texts:
        key = candidate_key(text)
        if key and key not in seen:
            seen.add(key)
            kept.append(text)
    return kept
