"""A toxicity judge trained on the platform's own data, for STA: toxic prompts against their human
neutral rewrites, as logistic regression (scikit-learn) on the bundled MiniLM sentence embeddings
plus alt-profanity-check's log-odds as one more feature.

alt-profanity-check scores words, so a rude sentence without a swear word passes as neutral. The
embeddings read whole sentences, but alone they miss the swear words a word list never misses: on
ParaDetox's held-out split (558 prompts, 906 references) MiniLM alone scored 0.904 against
profanity-check's 0.942, MiniLM plus profanity-check's log-odds 0.956 (README, "A trained toxicity
judge"). So the word score is a feature (``JudgeConfig.with_profanity``), and the regression learns
how much to trust it against the sentence. It is trained only on non-held-out prompts (the held-out split is what
evaluation scores; training refuses any of its texts) and measured on the held-out prompts' texts
(toxic) and references (neutral), next to profanity-check on the very same texts, with Wilson 95%
intervals. Saved as plain numbers (``weights.npz``: coefficients and intercept, no pickle) and a
``judge.json`` with its accuracy, data counts and a hash of the training texts, written to a
temporary directory and renamed into place.

Plain Python, no Django: the platform passes the texts in.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .evaluate import DEFAULT_EMBEDDER, Embedder, NamedClassifier, _cached, _words, load_embedder

JUDGE_FILE = "judge.json"
WEIGHTS_FILE = "weights.npz"
KIND = "embedding-logreg"
WordScorer = Callable[[list[str]], Sequence[float]]  # P(toxic) per text, e.g. profanity-check


class JudgeError(ValueError):
    """The judge cannot be trained or loaded; the message says why."""


@dataclass(frozen=True)
class JudgeConfig:
    """How the judge is trained; stored in ``judge.json``."""

    embedder: str = DEFAULT_EMBEDDER
    regularization_c: float = 1.0  # scikit-learn's C: inverse L2 strength
    max_per_side: int = 6000  # seeded sample of toxic and of neutral training texts (time on a CPU)
    seed: int = 0
    confidence: float = 0.95  # of the accuracy intervals
    threshold: float = 0.5  # toxic when P(toxic) >= threshold, as STA reads it
    with_profanity: bool = True  # profanity-check's log-odds as one more feature

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(text: str) -> str:
    """Texts equal up to case, punctuation and spacing are one text."""
    return " ".join(_words(text))


def _unique(texts: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for text in texts:
        key = _key(text)
        if key and key not in seen:
            seen[key] = text
    return list(seen.values())


def _sample(texts: list[str], size: int, seed: int) -> list[str]:
    if len(texts) <= size:
        return texts
    keep = sorted(np.random.default_rng(seed).choice(len(texts), size=size, replace=False))
    return [texts[i] for i in keep]


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy's ``binomtest``); (0, 1) without data."""
    if total == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def paired_comparison(
    toxic_a: Sequence[float], neutral_a: Sequence[float], toxic_b: Sequence[float], neutral_b: Sequence[float], *, threshold: float = 0.5
) -> dict[str, Any]:
    """Two judges on the same texts: how often only one is right, and the exact McNemar p-value of
    that split (both judges' intervals overlap far more than their paired difference is uncertain)."""
    right_a = [p >= threshold for p in toxic_a] + [p < threshold for p in neutral_a]
    right_b = [p >= threshold for p in toxic_b] + [p < threshold for p in neutral_b]
    only_a = sum(1 for a, b in zip(right_a, right_b) if a and not b)
    only_b = sum(1 for a, b in zip(right_a, right_b) if b and not a)
    p_value = 1.0
    if only_a + only_b:
        from scipy.stats import binomtest

        p_value = float(binomtest(only_a, only_a + only_b).pvalue)
    return {"only_trained_right": only_a, "only_profanity_right": only_b, "mcnemar_p": p_value}


def judge_accuracy(
    toxic_probabilities: Sequence[float], neutral_probabilities: Sequence[float], *, threshold: float = 0.5, confidence: float = 0.95
) -> dict[str, Any]:
    """Share of texts judged right (toxic ones >= threshold, neutral ones below), with its interval
    and the two sides' rates."""
    toxic_right = sum(1 for p in toxic_probabilities if p >= threshold)
    neutral_right = sum(1 for p in neutral_probabilities if p < threshold)
    n_toxic, n_neutral = len(toxic_probabilities), len(neutral_probabilities)
    correct, total = toxic_right + neutral_right, n_toxic + n_neutral
    low, high = wilson_interval(correct, total, confidence)
    return {
        "accuracy": correct / total if total else 0.0,
        "low": low,
        "high": high,
        "confidence": confidence,
        "n": total,
        "toxic_caught": toxic_right / n_toxic if n_toxic else None,
        "neutral_passed": neutral_right / n_neutral if n_neutral else None,
    }


def train_judge(
    *,
    toxic: Sequence[str],
    neutral: Sequence[str],
    heldout_toxic: Sequence[str],
    heldout_neutral: Sequence[str],
    output_dir: str | Path,
    config: JudgeConfig | None = None,
    embedder: Embedder | None = None,
    baseline: Any | None = None,
) -> dict[str, Any]:
    """Fit the judge on ``toxic`` (label 1) and ``neutral`` (label 0) texts, measure it and
    ``baseline`` (default: profanity-check) on the held-out texts, and save it to ``output_dir``
    (replacing an older judge there only once the new one is complete). Returns ``judge.json``.

    Raises ``JudgeError`` when a side is empty, when a training prompt is a held-out prompt (the
    evaluation's split must stay unseen), or when there is nothing held out to measure on; training
    texts equal to a held-out text up to case and punctuation are dropped and counted.
    """
    from sklearn.linear_model import LogisticRegression

    config = config or JudgeConfig()
    started = time.perf_counter()
    heldout_inputs = {" ".join(t.split()) for t in heldout_toxic}
    leaked = [t for t in toxic if " ".join(t.split()) in heldout_inputs]
    if leaked:
        raise JudgeError(
            f"{len(leaked)} training text(s) are held-out prompts (e.g. {leaked[0]!r}): "
            "the judge never trains on the evaluation's split"
        )
    # Texts that merely look like held-out ones (short references such as "he is not a good person"
    # recur across prompts) are left out of training, so the held-out accuracy stays unseen data.
    heldout_keys = {_key(t) for t in [*heldout_toxic, *heldout_neutral]} - {""}
    toxic_texts = [t for t in _unique(toxic) if _key(t) not in heldout_keys]
    toxic_keys = {_key(t) for t in toxic_texts}
    # A "rewrite" equal to a toxic input (echoes exist in ParaDetox) would teach both labels at once.
    neutral_texts = [t for t in _unique(neutral) if _key(t) not in toxic_keys | heldout_keys]
    overlap = sum(1 for t in _unique([*toxic, *neutral]) if _key(t) in heldout_keys)
    if not toxic_texts or not neutral_texts:
        raise JudgeError(f"need toxic and neutral training texts, got {len(toxic_texts)} and {len(neutral_texts)}")
    if not heldout_toxic or not heldout_neutral:
        raise JudgeError("need held-out toxic texts and references to measure the judge on")
    toxic_texts = _sample(toxic_texts, config.max_per_side, config.seed)
    neutral_texts = _sample(neutral_texts, config.max_per_side, config.seed + 1)

    embed = embedder or load_embedder(config.embedder)
    if baseline is None:
        from .evaluate import load_toxicity_classifier

        baseline = load_toxicity_classifier("profanity-check")
    word_scorer = baseline if config.with_profanity else None
    features = judge_features(toxic_texts + neutral_texts, embed, word_scorer)
    labels = np.array([1] * len(toxic_texts) + [0] * len(neutral_texts))
    model = LogisticRegression(C=config.regularization_c, max_iter=3000, class_weight="balanced", random_state=config.seed)
    model.fit(features, labels)
    coef, intercept = model.coef_[0].astype(np.float32), float(model.intercept_[0])

    judge = EmbeddingJudge(coef, intercept, embed, word_scorer)
    scores = {
        "trained": (judge(list(heldout_toxic)), judge(list(heldout_neutral))),
        "profanity-check": (baseline(list(heldout_toxic)), baseline(list(heldout_neutral))),
    }
    measured = {
        name: judge_accuracy(toxic_p, neutral_p, threshold=config.threshold, confidence=config.confidence)
        for name, (toxic_p, neutral_p) in scores.items()
    }
    digest = hashlib.sha256("\n".join(["1\t" + t for t in toxic_texts] + ["0\t" + t for t in neutral_texts]).encode()).hexdigest()
    meta = {
        "kind": KIND,
        "config": config.as_dict(),
        "embedder": str(getattr(embed, "name", config.embedder)),
        "train": {"toxic": len(toxic_texts), "neutral": len(neutral_texts), "hash": digest, "dropped_like_heldout": overlap},
        "heldout": {"toxic": len(heldout_toxic), "neutral": len(heldout_neutral)},
        "features": [str(getattr(embed, "name", config.embedder))] + (["profanity-check log-odds"] if word_scorer else []),
        "accuracy": measured,
        "paired": paired_comparison(*scores["trained"], *scores["profanity-check"], threshold=config.threshold),
        "train_accuracy": float(model.score(features, labels)),
        "seconds": round(time.perf_counter() - started, 2),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_versions": _versions(),
    }
    _save(Path(output_dir), coef, intercept, meta)
    return meta


def _versions() -> dict[str, str]:
    import importlib.metadata

    found = {}
    for name in ("scikit-learn", "sentence-transformers", "numpy", "alt-profanity-check"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def _save(final: Path, coef: np.ndarray, intercept: float, meta: dict[str, Any]) -> None:
    """Write into ``.tmp-*`` beside ``final``, then swap it in: a reader sees the old judge or the new one."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        np.savez(tmp / WEIGHTS_FILE, coef=coef, intercept=np.array([intercept], dtype=np.float32))
        (tmp / JUDGE_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def judge_features(texts: list[str], embedder: Embedder, word_scorer: WordScorer | None) -> np.ndarray:
    """One row per text: its sentence embedding, then (with a word scorer) that scorer's log-odds."""
    rows = np.asarray(embedder(list(texts)), dtype=np.float32)
    if word_scorer is None:
        return rows
    p = np.clip(np.asarray(word_scorer(list(texts)), dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.hstack([rows, np.log(p / (1 - p)).astype(np.float32)[:, None]])


class EmbeddingJudge:
    """P(toxic) = sigmoid(features · coef + intercept), features as ``judge_features`` builds them."""

    def __init__(self, coef: np.ndarray, intercept: float, embedder: Embedder, word_scorer: WordScorer | None = None) -> None:
        self.coef, self.intercept, self.embedder, self.word_scorer = coef, intercept, embedder, word_scorer

    def __call__(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        logits = judge_features(list(texts), self.embedder, self.word_scorer) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-logits))).tolist()


def is_judge_directory(path: str | Path) -> bool:
    return (Path(path) / JUDGE_FILE).is_file() and (Path(path) / WEIGHTS_FILE).is_file()


def read_judge_file(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / JUDGE_FILE).read_text())


def load_trained_judge(path: str | Path, *, embedder: Embedder | None = None) -> NamedClassifier:
    """The judge saved at ``path`` as a toxicity classifier named ``trained:<directory name>``
    (cached per process and per ``judge.json`` content, so a retrained judge is picked up)."""
    path = Path(path)
    if not is_judge_directory(path):
        raise JudgeError(f"no trained judge at {path}: run manage.py train_judge first")
    meta_text = (path / JUDGE_FILE).read_text()
    meta = json.loads(meta_text)
    # Loaded before the cache lock is taken: the scorers are cached under the same (non-reentrant) lock.
    embed = embedder or load_embedder(meta.get("embedder") or DEFAULT_EMBEDDER)
    word_scorer = None
    if meta.get("config", {}).get("with_profanity"):
        from .evaluate import load_toxicity_classifier

        word_scorer = load_toxicity_classifier("profanity-check")

    def build() -> NamedClassifier:
        weights = np.load(path / WEIGHTS_FILE)
        judge = EmbeddingJudge(weights["coef"], float(weights["intercept"][0]), embed, word_scorer)
        return NamedClassifier(f"trained:{path.name}", judge)

    if embedder is not None:
        return build()
    return _cached(("judge", str(path), hashlib.sha256(meta_text.encode()).hexdigest()), build)
