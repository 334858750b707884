"""The learning-loop benchmark's simulated annotator judges like a careful person, without the
evaluation's own scorers: offensive words learned from the training split, closeness to the references."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dpo_round.py"


@pytest.fixture
def dpo_round(monkeypatch):
    import django

    monkeypatch.setattr(django, "setup", lambda: None)  # already set up; keep the test run's logging as it is
    spec = importlib.util.spec_from_file_location("dpo_round_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lexicon_holds_words_the_human_rewrites_delete(prompts, dpo_round):
    lexicon = dpo_round.offensive_lexicon()
    assert {"stupid", "idiot"} <= lexicon  # deleted from every training prompt's reference
    assert "you" not in lexicon and "are" not in lexicon  # kept by the references


def test_the_annotator_picks_a_clean_close_candidate_or_writes_the_reference(prompts, dpo_round):
    annotator = dpo_round.Annotator("lexicon")
    references = ["you are wrong 1"]
    candidates = [SimpleNamespace(pk=1, text="you are a stupid idiot 1"), SimpleNamespace(pk=2, text="You are wrong 1.")]
    assert annotator.choose(candidates, references) == (2, "")
    assert annotator.choose(candidates[:1], references) == (None, "you are wrong 1")  # nothing clean: own rewrite


def test_variants_parse_numbers_as_floats_switches_as_booleans_and_keep_names_as_strings(dpo_round):
    assert dpo_round.parse_variant("rpo_alpha=1,loss_type=ipo,group_by_length=false") == {
        "rpo_alpha": 1.0, "loss_type": "ipo", "group_by_length": False
    }


def test_a_variant_can_change_a_data_filter_as_well_as_hyperparameters(dpo_round):
    variant = dpo_round.parse_variant("rpo_alpha=0,reject_own_echo=0")
    assert dpo_round.split_variant(variant) == ({"reject_own_echo": False}, {"rpo_alpha": 0.0})


def test_a_chain_can_change_its_annotators_between_rounds_and_names_a_wrong_kind(dpo_round):
    assert dpo_round.annotator_schedule("minimal,lexicon", 3) == ["minimal", "lexicon", "lexicon"]
    assert dpo_round.annotator_schedule("noisy", 2) == ["noisy", "noisy"]
    with pytest.raises(ValueError, match="unknown annotator careless"):
        dpo_round.annotator_schedule("minimal,careless", 2)


def test_a_chain_can_widen_its_pool_between_rounds_and_refuses_a_factor_below_one(dpo_round):
    assert dpo_round.oversample_schedule("2,6", 3) == [2.0, 6.0, 6.0]
    assert dpo_round.oversample_schedule("1", 2) == [1.0, 1.0]
    for wrong in ("2,0.5", "2,many"):
        with pytest.raises(ValueError, match="at least 1"):
            dpo_round.oversample_schedule(wrong, 2)


def test_no_annotator_takes_the_toxic_sentence_back_and_the_minimal_one_changes_least(prompts, dpo_round):
    toxic = "you are a stupid idiot number 1"
    references = ["you are wrong 1"]
    echo = SimpleNamespace(pk=1, text="You are a stupid idiot number 1.")
    small = SimpleNamespace(pk=2, text="You are right 1.")  # "a" and "number" are in the test lexicon too
    large = SimpleNamespace(pk=3, text="I disagree with you.")
    assert dpo_round.Annotator("reference").choose([echo], references, toxic) == (None, "you are wrong 1")
    assert dpo_round.Annotator("minimal").choose([echo, small, large], references, toxic) == (2, "")
    assert dpo_round.Annotator("minimal").choose([echo], references, toxic) == (None, "you are wrong 1")


def test_an_oversampled_round_judges_the_first_items_in_the_pools_order(settings, annotator, filled_pool, dpo_round):
    from annotations.models import AnnotationItem, Judgement

    settings.POOL_ORDER = "failures"
    echoed = AnnotationItem.objects.order_by("-id").first()
    AnnotationItem.objects.filter(pk=echoed.pk).update(model_echo=echoed.prompt.text)
    counts = dpo_round.simulate_annotation(annotator, dpo_round.Annotator("minimal"), limit=2)
    assert sum(counts.values()) == 2 == Judgement.objects.filter(user=annotator).count()
    assert Judgement.objects.filter(user=annotator, item=echoed).exists()  # the echoed prompt came first
    assert AnnotationItem.objects.count() > 2  # the rest stays in the pool


def test_a_rounds_pairs_are_read_with_the_evaluations_own_j_on_both_sides(annotator, filled_pool, dpo_round):
    from annotations.models import PreferencePair

    dpo_round.simulate_annotation(annotator, dpo_round.Annotator("minimal"), limit=2)
    pairs = PreferencePair.objects.filter(judgement__user=annotator)
    diagnostics = dpo_round.pair_diagnostics(pairs)
    assert diagnostics["pairs"] == pairs.count() > 0
    assert 0 <= diagnostics["rejected_j"] <= 1 and 0 <= diagnostics["chosen_j"] <= 1
    assert diagnostics["chosen_higher_j"] + diagnostics["chosen_lower_j"] <= diagnostics["pairs"]
    assert dpo_round.pair_diagnostics(PreferencePair.objects.none()) == {"pairs": 0}
