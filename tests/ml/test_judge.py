"""The trained toxicity judge as plain Python: training refuses held-out texts, its files are written
atomically with the accuracy of both judges, and evaluation loads it from its directory."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from training.ml import evaluate as ev
from training.ml.judge import (
    JudgeConfig,
    JudgeError,
    judge_accuracy,
    load_trained_judge,
    paired_comparison,
    train_judge,
    wilson_interval,
)

RUDE = ["idiot", "stupid", "moron", "dumb", "crap", "hell", "damn", "fool", "shut", "trash"]
TOXIC = [f"you {RUDE[i % 10]} {RUDE[(3 * i + 1) % 10]} number {i}" for i in range(30)]
NEUTRAL = [f"i think you are wrong about point {i}" for i in range(30)]


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A stand-in embedder: hashed word counts (no model load), enough to separate rude words."""
    rows = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in zip(rows, texts):
        for word in text.lower().split():
            row[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
    return rows


def profanity_stub(texts: list[str]) -> list[float]:
    return [1.0 if "idiot" in t else 0.0 for t in texts]


def train(tmp_path, **kwargs):
    args = dict(
        toxic=TOXIC[:24], neutral=NEUTRAL[:24], heldout_toxic=TOXIC[24:], heldout_neutral=NEUTRAL[24:],
        output_dir=tmp_path / "judges" / "trained", embedder=bag_of_words, baseline=profanity_stub,
    )
    return train_judge(**{**args, **kwargs})


def test_judge_refuses_to_train_on_heldout_texts(tmp_path):
    with pytest.raises(JudgeError, match="1 training text\\(s\\) are held-out prompts \\(e.g. 'you "):
        train(tmp_path, toxic=TOXIC[:24] + [TOXIC[25]])
    assert not (tmp_path / "judges" / "trained").exists()
    with pytest.raises(JudgeError, match="need toxic and neutral training texts, got 24 and 0"):
        train(tmp_path, neutral=[])


def test_judge_writes_accuracy_of_both_judges_counts_and_hash(tmp_path):
    meta = train(tmp_path)
    directory = tmp_path / "judges" / "trained"
    assert json.loads((directory / "judge.json").read_text()) == meta
    assert meta["train"]["toxic"] == 24 and meta["train"]["neutral"] == 24 and len(meta["train"]["hash"]) == 64
    assert meta["heldout"] == {"toxic": 6, "neutral": 6}
    assert meta["train"]["dropped_like_heldout"] == 0
    trained, profanity = meta["accuracy"]["trained"], meta["accuracy"]["profanity-check"]
    assert trained["n"] == profanity["n"] == 12 and trained["accuracy"] == 1.0
    assert trained["low"] < 1.0 == trained["high"] and trained["confidence"] == 0.95
    assert profanity["neutral_passed"] == 1.0 and profanity["toxic_caught"] < 1.0
    assert meta["features"][1:] == ["profanity-check log-odds"]
    assert meta["paired"]["only_profanity_right"] == 0 and meta["paired"]["only_trained_right"] > 0
    assert 0 < meta["paired"]["mcnemar_p"] <= 1
    assert sorted(p.name for p in directory.iterdir()) == ["judge.json", "weights.npz"]
    # Retraining swaps the directory whole and leaves no temporary behind.
    train(tmp_path, config=JudgeConfig(max_per_side=10))
    assert json.loads((directory / "judge.json").read_text())["train"]["toxic"] == 10
    assert [p.name for p in (tmp_path / "judges").iterdir()] == ["trained"]


def test_saved_judge_scores_like_a_toxicity_classifier(tmp_path):
    train(tmp_path)
    judge = load_trained_judge(tmp_path / "judges" / "trained", embedder=bag_of_words)
    assert judge.name == "trained:trained"
    toxic, neutral = judge(["you stupid moron number 99", "i think you are wrong about point 99"])
    assert toxic > 0.5 > neutral
    with pytest.raises(JudgeError, match="no trained judge at"):
        load_trained_judge(tmp_path / "nowhere")


def test_load_toxicity_classifier_recognises_a_judge_directory(tmp_path, monkeypatch):
    train(tmp_path)
    monkeypatch.setattr(ev, "load_embedder", lambda spec=None, **kw: ev.NamedEmbedder("bag", bag_of_words))
    import training.ml.judge as judge_module

    monkeypatch.setattr(judge_module, "load_embedder", lambda spec=None, **kw: ev.NamedEmbedder("bag", bag_of_words))
    ev.clear_cache()
    classifier = ev.load_toxicity_classifier(str(tmp_path / "judges" / "trained"))
    assert classifier.name == "trained:trained"
    report = ev.evaluate_outputs(
        ["you idiot"], ["you stupid moron"], [["you are wrong"]], classifier=classifier, embedder=ev.NamedEmbedder("bag", bag_of_words),
        other_classifiers={"profanity": ev.NamedClassifier("stub", profanity_stub)},
    )
    assert report.metrics["sta"] == 0.0 and report.metrics["sta_profanity"] == 1.0
    assert report.meta["classifier"] == "trained:trained" and report.meta["other_classifiers"] == {"sta_profanity": "stub"}
    ev.clear_cache()


def test_accuracy_interval_is_wilson():
    low, high = wilson_interval(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    measured = judge_accuracy([0.9, 0.2], [0.1, 0.7])
    assert measured["accuracy"] == 0.5 and measured["toxic_caught"] == 0.5 and measured["neutral_passed"] == 0.5


def test_texts_like_heldout_ones_are_left_out_of_training(tmp_path):
    meta = train(tmp_path, toxic=TOXIC[:24] + [TOXIC[25].upper() + "!"], neutral=NEUTRAL[:24] + [NEUTRAL[26] + "."])
    assert meta["train"]["toxic"] == 24 and meta["train"]["neutral"] == 24 and meta["train"]["dropped_like_heldout"] == 2


def test_paired_comparison_counts_discordant_texts():
    paired = paired_comparison([0.9, 0.9, 0.1], [0.1], [0.1, 0.9, 0.1], [0.1])
    assert paired["only_trained_right"] == 1 and paired["only_profanity_right"] == 0 and paired["mcnemar_p"] == 1.0


def test_judge_without_the_word_feature_uses_embeddings_only(tmp_path):
    meta = train(tmp_path, config=JudgeConfig(with_profanity=False))
    assert len(meta["features"]) == 1 and meta["accuracy"]["trained"]["accuracy"] == 1.0
