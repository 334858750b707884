"""Automatic evaluation (training.ml.evaluate): unit checks of each metric, and on real ParaDetox
rows the human references must beat degenerate systems (copy, word deletion, empty, repetition).

Plain pytest, no Django. Models are loaded once per session; torch runs on one thread.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as `pytest tests/ml/...` without an installed package
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", "1")))

from training.ml import evaluate as ev  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "paradetox.tsv"
SAMPLE_SIZE = 200
SEED = 0


@pytest.fixture(autouse=True)
def _isolated_settings():
    """Overrides tests/conftest.py's Django/Redis autouse fixtures: this module needs neither."""


@pytest.fixture(autouse=True)
def _clean_redis():
    """See ``_isolated_settings``."""


class MemoEmbedder:
    """The real embedder with a per-text memo, so the inputs are embedded once for all systems."""

    def __init__(self, inner: ev.NamedEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.memo: dict[str, object] = {}

    def __call__(self, texts: list[str]):
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            for text, vector in zip(todo, self.inner(todo)):
                self.memo[text] = vector
        return np.stack([self.memo[t] for t in texts])


@pytest.fixture(scope="session")
def classifier() -> ev.NamedClassifier:
    return ev.load_toxicity_classifier()


@pytest.fixture(scope="session")
def embedder() -> MemoEmbedder:
    return MemoEmbedder(ev.load_embedder())


@pytest.fixture(scope="session")
def score(classifier, embedder):
    def run(inputs, outputs, references=None, **kwargs):
        references = references if references is not None else [[] for _ in inputs]
        return ev.evaluate_outputs(inputs, outputs, references, classifier=classifier, embedder=embedder, **kwargs)

    return run


@pytest.fixture(scope="session")
def heldout() -> ev.HeldoutSample:
    if not DATA.exists():
        pytest.skip(f"../shared/data/paradetox.tsv not found: expected at {DATA} (the ParaDetox data lives beside the repo)")
    prompts, references = ev.read_references_tsv(DATA)
    return ev.select_heldout_sample(prompts, references, sample_size=SAMPLE_SIZE, seed=SEED)


# ---------------------------------------------------------------------------------------------
# Unit checks of each metric
# ---------------------------------------------------------------------------------------------


def test_sta_uses_the_classifier_and_threshold(score, classifier):
    report = score(["you are a stupid idiot", "you are a stupid idiot"], ["thank you", "you are a stupid idiot"])
    assert [r.sta for r in report.rows] == [1.0, 0.0]
    assert report.rows[0].toxicity < 0.5 < report.rows[1].toxicity
    assert report.meta["classifier"] == "profanity-check"

    lenient = score(
        ["you are a stupid idiot"], ["you are a stupid idiot"], config=ev.EvalConfig(toxicity_threshold=1.01)
    )
    assert lenient.rows[0].sta == 1.0


def test_a_custom_classifier_plugs_in(classifier, embedder):
    calls = []

    def fixed(texts):
        calls.append(list(texts))
        return [0.9 if "bad" in t else 0.1 for t in texts]

    report = ev.evaluate_outputs(
        ["x is bad", "y is bad"], ["x is bad word here", "y is fine here"], [[], []], classifier=fixed, embedder=embedder
    )
    assert calls == [["x is bad word here", "y is fine here"]]
    assert [r.sta for r in report.rows] == [0.0, 1.0]
    assert report.meta["classifier"] == "test_a_custom_classifier_plugs_in.<locals>.fixed"


def test_sim_of_identical_text_is_one_and_empty_is_zero(score):
    report = score(["the weather is nice today"] * 3, ["the weather is nice today", "i like green apples", ""])
    identical, unrelated, empty = (r.sim for r in report.rows)
    assert identical == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= unrelated < 0.5
    assert empty == 0.0


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("you are such a damn idiot !", "echo"),
        ("You are such a DAMN idiot", "echo"),
        ("Sure! Here it is: you are such a damn idiot!", "echo"),
        ("sorry sorry sorry sorry", "repetition"),
        ("you are nice you are nice you are nice", "repetition"),
        ("you are such a", "broken"),
        ("you are such a .", "broken"),
        (", you are nice", "broken"),
        ("<|im_start|>assistant you are nice", "debris"),
    ],
)
def test_fluency_is_zero_for_degenerate_outputs(output, reason):
    fl, flags = ev.fluency_checks(output, "you are such a damn idiot !")
    assert fl == 0.0
    assert any(reason in flag for flag in flags), flags


def test_fluency_keeps_real_rewrites():
    toxic = "you are such a damn idiot !"
    for rewrite in ("you are not very smart !", "You are such a fool.", "you are mistaken", "Please think again."):
        fl, flags = ev.fluency_checks(rewrite, toxic)
        assert fl == 1.0, (rewrite, flags)
    fl, flags = ev.fluency_checks("no", "this is the dumbest fucking thing i have ever read in my whole life")
    assert 0.0 < fl < 0.5 and "too short" in flags[0]


def test_lm_factor_is_a_bounded_sigmoid():
    assert ev.lm_factor(0.0, margin=2.0, scale=0.25) > 0.99
    assert ev.lm_factor(-2.0, margin=2.0, scale=0.25) == pytest.approx(0.5)
    assert ev.lm_factor(-1000.0, margin=2.0, scale=0.25) == pytest.approx(0.0)


def test_broken_structure_finds_deletion_traces():
    assert ev.broken_structure("thomas jefferson is a") == ["ends with 'a'"]
    assert ev.broken_structure("and guess what , we dont give a who pays") == ["'a who'"]
    assert ev.broken_structure("is there a problem with that ?") == []
    assert ev.broken_structure("he was brave too!") == []


def test_chrf_j_and_report_shape(score):
    inputs = ["you are a stupid idiot", "this is damn crap"]
    outputs = ["you are not smart", "this is bad"]
    references = [["you are not smart"], ["this is bad", "this is not good"]]
    report = score(inputs, outputs, references)
    assert [r.chrf for r in report.rows] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert report.metrics["chrf"] == pytest.approx(1.0)
    assert report.metrics["j"] == pytest.approx(sum(r.sta * r.sim * r.fl for r in report.rows) / 2)
    assert set(report.metrics) == {"sta", "sim", "fl", "chrf", "j", "n"} and report.metrics["n"] == 2
    data = report.to_dict()
    assert data["meta"]["fluency"]["mode"] == "checks"
    assert data["meta"]["chrf"]["signature"].startswith("nrefs:")
    assert len(data["rows"]) == 2 and "fl_flags" in data["rows"][0]
    assert "J=" in report.summary()

    missing = score(["you are a stupid idiot"], ["you are not smart"], [[]])
    assert missing.rows[0].chrf is None and missing.meta["chrf"]["n"] == 0
    with pytest.raises(ev.EvaluationError):
        score(["a", "b"], ["a"], [[], []])


def test_heldout_sample_is_deterministic():
    prompts = [f"p{i}" for i in range(100)]
    references = [[f"r{i}"] for i in range(100)]
    a = ev.select_heldout_sample(prompts, references, sample_size=10, seed=3)
    b = ev.select_heldout_sample(prompts, references, sample_size=10, seed=3)
    c = ev.select_heldout_sample(prompts, references, sample_size=10, seed=4)
    assert a == b and a.indices != c.indices
    assert a.indices == sorted(a.indices) and a.prompts == [f"p{i}" for i in a.indices]
    assert a.references == [[f"r{i}"] for i in a.indices]
    assert ev.select_heldout_sample(prompts, references, sample_size=None, seed=0).indices == list(range(100))


def test_transformers_classifier_from_a_local_directory(tmp_path):
    """The factory builds a text-classification pipeline from a model directory (a tiny random BERT
    with the MiniLM tokenizer stands in for e.g. s-nlp/roberta_toxicity_classifier)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(ev.bundled_embedder_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2, id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    clf = ev.load_toxicity_classifier(str(tmp_path))
    probs = clf(["thank you", "you are an idiot", ""])
    assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)
    assert clf.name == str(tmp_path)
    assert ev.load_toxicity_classifier(str(tmp_path)) is clf  # cached per process
    assert ev._toxic_label(["LABEL_0", "LABEL_1"]) == "LABEL_1"
    with pytest.raises(ev.EvaluationError):
        ev._toxic_label(["positive", "negative", "mixed"])


def test_evaluate_model_generates_greedily(tmp_path, classifier, embedder):
    from training.ml.tiny import build_tiny_checkpoint

    model_dir = build_tiny_checkpoint(tmp_path / "tiny")
    prompts = ["you are a stupid idiot", "shut up you fool", "this is damn crap", "what the hell are you doing"]
    references = [["you are not smart"], ["please be quiet"], ["this is not good"], ["what are you doing"]]
    config = ev.EvalConfig(sample_size=3, seed=1, max_new_tokens=8)
    first = ev.evaluate_model(model_dir, prompts, references, config=config, classifier=classifier, embedder=embedder)
    second = ev.evaluate_model(model_dir, prompts, references, config=config, classifier=classifier, embedder=embedder)
    assert first.metrics["n"] == 3
    assert [r.output for r in first.rows] == [r.output for r in second.rows]
    assert first.meta["sample_indices"] == second.meta["sample_indices"]
    assert first.meta["decoding"]["strategy"] == "greedy"
    assert first.meta["seed"] == 1 and first.meta["config"]["sample_size"] == 3 and first.meta["population"] == 4


# ---------------------------------------------------------------------------------------------
# Real data: human references beat degenerate systems
# ---------------------------------------------------------------------------------------------


def _delete_flagged_words(texts: list[str], classifier) -> list[str]:
    """The ParaDetox "Delete" baseline with the STA classifier itself choosing the words to drop."""
    outputs = []
    for text in texts:
        words = text.split()
        outputs.append(" ".join(w for w, p in zip(words, classifier(words)) if p < 0.5))
    return outputs


@pytest.fixture(scope="session")
def systems(heldout, classifier, score):
    inputs, references = heldout.prompts, heldout.references
    outputs = {
        "references": [refs[0] for refs in references],
        "copy": list(inputs),
        "deletion": _delete_flagged_words(inputs, classifier),
        "empty": [""] * len(inputs),
        "repetition": [("sorry " * 4).strip()] * len(inputs),
    }
    return {name: score(inputs, outs, references) for name, outs in outputs.items()}


def test_sample_is_deterministic_and_recorded(heldout, systems):
    assert len(heldout.indices) == SAMPLE_SIZE
    assert all(refs for refs in heldout.references)
    assert systems["references"].metrics["n"] == SAMPLE_SIZE


def test_human_references_score_high(systems):
    m = systems["references"].metrics
    assert m["sta"] > 0.9
    assert m["fl"] > 0.9  # calibration: real human rewrites are fluent
    assert 0.7 < m["sim"] < 0.95
    assert m["j"] > 0.65


@pytest.mark.parametrize(("system", "margin"), [("copy", 0.5), ("deletion", 0.05), ("empty", 0.5), ("repetition", 0.5)])
def test_human_references_beat_degenerate_systems(systems, system, margin):
    refs, other = systems["references"].metrics, systems[system].metrics
    assert refs["j"] > other["j"] + margin, (refs, other)


def test_what_each_metric_catches(systems):
    copy, deletion, empty, repetition = (systems[k].metrics for k in ("copy", "deletion", "empty", "repetition"))
    assert copy["sta"] < 0.3 and copy["fl"] == 0.0 and copy["sim"] > 0.99
    assert deletion["sta"] > 0.95 and deletion["sim"] > systems["references"].metrics["sim"]
    assert deletion["fl"] < systems["references"].metrics["fl"] - 0.1  # deletion breaks sentences
    assert empty["sim"] == 0.0 and empty["fl"] == 0.0 and empty["chrf"] == 0.0
    assert repetition["fl"] == 0.0 and repetition["j"] == 0.0


# ---------------------------------------------------------------------------------------------
# Optional language-model factor of FL (bundled SmolLM2, converted once into var/eval-lm)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fluency_lm_dir() -> Path:
    from training.ml.checkpoints import CheckpointError, bundled_gguf_path

    try:
        bundled_gguf_path()
    except CheckpointError as exc:
        pytest.skip(f"no bundled language model: {exc}")
    from training.ml.checkpoints import is_checkpoint

    if os.environ.get("DETOX_EVAL_LM_DIR"):
        return ev.ensure_fluency_lm(os.environ["DETOX_EVAL_LM_DIR"])
    converted = ROOT / "var" / "test-models" / "base-smollm2-135m-instruct"  # tests/training/test_generation.py's copy
    if is_checkpoint(converted):
        return converted
    return ev.ensure_fluency_lm(ROOT / "var" / "eval-lm")  # converted once (~20 s), kept between runs


@pytest.mark.slow
def test_language_model_prefers_real_sentences(fluency_lm_dir):
    lm = ev.get_fluency_lm(fluency_lm_dir)
    assert ev.get_fluency_lm(fluency_lm_dir) is lm
    good, salad, cut = lm.score(
        ["the cat sat on the mat .", "mat the on sat cat the .", "the cat sat on the"]
    )
    assert good > salad + 1.0 and good > cut


@pytest.mark.slow
def test_language_model_catches_truncated_rewrites(heldout, score, fluency_lm_dir):
    inputs = heldout.prompts[:24]
    references = heldout.references[:24]
    human = score(inputs, [r[0] for r in references], references, fluency_lm_dir=fluency_lm_dir)
    truncated = [" ".join(t.split()[: max(1, len(t.split()) // 2)]) for t in inputs]
    cut = score(inputs, truncated, references, fluency_lm_dir=fluency_lm_dir)
    assert human.meta["fluency"]["mode"] == "checks+lm"
    assert human.metrics["fl"] > 0.8
    assert cut.metrics["fl"] < human.metrics["fl"] - 0.3
    assert all(r.lm_delta is not None for r in human.rows if r.fl > 0)
