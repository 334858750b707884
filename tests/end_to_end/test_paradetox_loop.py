"""Quality control, active selection, review, exports and the arena on real ParaDetox rows.

Candidates come from a stand-in model that offers the human reference among worse rewrites of the
real toxic sentence, so careful annotators have a right answer to find and a spammer does not.
Skips (with the path it looked for) where ../shared/data is absent.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from annotations.exports import export_dataset
from annotations.importers import PromptRecord, import_prompts, read_prompts
from annotations.models import AnnotationItem, Judgement, PreferencePair, Prompt
from training.generation import refill_pool
from annotations.review import approve_pairs, reject_pairs
from annotations.services import next_assignment, submit_judgement
from arena import services as arena
from quality.services import annotator_report, make_gold_item, overall_agreement
from tests.conftest import PerPromptSampling, shared_file
from tests.arena.test_arena import StubModels, make_version
from training.ml.generate import SampledRewrite

pytestmark = pytest.mark.django_db

ROWS = 200


@pytest.fixture
def paradetox(db) -> dict[str, str]:
    """The first ParaDetox rows, imported as the platform imports them; toxic text -> first reference."""
    records = [r for r in read_prompts(shared_file("paradetox.tsv"), "paradetox") if isinstance(r, PromptRecord)]
    import_prompts(records[:ROWS], source="paradetox")
    return {p.text: p.references[0] for p in Prompt.objects.all()}


class ReferenceAmongWorse(PerPromptSampling):
    """Offers the human reference, a padded copy of the input and a truncated one."""

    def __init__(self, references: dict[str, str]) -> None:
        self.references = references

    def sample(self, toxic, config, *, seed):
        texts = [self.references[toxic], f"you know, {toxic}", " ".join(toxic.split()[:2]) + " ..."]
        return [SampledRewrite(text=t, seed=seed, index=i, seconds=0.01) for i, t in enumerate(texts)]


def annotate_all(user, choose) -> int:
    """Judge every item the pool offers ``user``; ``choose(assignment)`` returns a candidate id."""
    done = 0
    while (assignment := next_assignment(user=user)) is not None:
        submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=choose(assignment), time_spent_ms=4000)
        done += 1
    return done


def test_real_rows_are_split_and_only_non_heldout_ones_are_served(paradetox, tiny_version):
    heldout = Prompt.objects.filter(is_heldout=True)
    assert 0 < heldout.count() < ROWS // 5  # a small, fixed evaluation split
    refill_pool(tiny_version.pk, target=30, generator_factory=lambda path: ReferenceAmongWorse(paradetox))
    assert not AnnotationItem.objects.filter(prompt__is_heldout=True).exists()


def test_quality_review_and_export_on_real_rows(paradetox, tiny_version, make_user, reviewer, staff, settings, tmp_path):
    settings.ANNOTATION_OVERLAP = 3
    refill_pool(tiny_version.pk, target=12, generator_factory=lambda path: ReferenceAmongWorse(paradetox))
    careful = [make_user("careful1"), make_user("careful2")]
    spammer = make_user("spammer")

    def reference_of(assignment) -> int:
        return assignment.item.candidates.get(text=paradetox[assignment.item.prompt.text]).pk

    for user in careful:
        assert annotate_all(user, reference_of) == 12
    assert annotate_all(spammer, lambda a: a.candidate_order[0]) == 12

    # Staff turn items the spammer got wrong into gold: every earlier answer to them is scored.
    wrong = [
        j.item for j in Judgement.objects.filter(user=spammer).select_related("item__prompt", "chosen_candidate")
        if j.chosen_candidate.text != paradetox[j.item.prompt.text]
    ][:3]
    assert wrong, "a spammer always on position 1 should miss a reference among 12 shuffled items"
    for item in wrong:
        make_gold_item(item=item, candidate=item.candidates.get(text=paradetox[item.prompt.text]), user=staff)

    rows = {row.username: row for row in annotator_report()}
    assert rows["careful1"].gold_accuracy == 1.0 and rows["careful2"].gold_accuracy == 1.0
    assert rows["spammer"].gold_accuracy == 0.0
    assert rows["spammer"].position1_share == 1.0 and rows["spammer"].flags
    assert not rows["careful1"].flags
    assert overall_agreement().alpha is not None

    # Review: the spammer's pairs go, the careful annotators' pairs become training data.
    reject_pairs(reviewer=reviewer, pairs=PreferencePair.objects.filter(judgement__user=spammer))
    approve_pairs(reviewer=reviewer, pairs=PreferencePair.objects.filter(judgement__user__in=careful))

    result = export_dataset(tmp_path / "export", what=["preferences"])
    lines = (Path(result.directory) / "preferences.jsonl").read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    approved = PreferencePair.objects.filter(status="approved")
    assert len(exported) == approved.count() > 0
    assert {r["annotator"] for r in exported} == {"careful1", "careful2"}
    for record in exported:  # chosen is always the human reference of that real sentence
        assert record["chosen"] == paradetox[record["prompt"]]
        assert record["rejected"] != record["chosen"]


def test_uncertain_order_serves_real_items_with_most_different_candidates_first(paradetox, tiny_version, annotator, settings):
    settings.POOL_ORDER = "uncertain"
    cycle = itertools.count()

    class SometimesSame(ReferenceAmongWorse):
        def sample(self, toxic, config, *, seed):  # every other prompt: near-identical candidates
            rewrites = super().sample(toxic, config, seed=seed)
            if next(cycle) % 2:
                rewrites = [SampledRewrite(text=self.references[toxic] + s, seed=seed, index=i, seconds=0.01)
                            for i, s in enumerate(("", " .", " !"))]
            return rewrites

    refill_pool(tiny_version.pk, target=8, generator_factory=lambda path: SometimesSame(paradetox))
    served = next_assignment(user=annotator).item
    assert served.diversity == max(AnnotationItem.objects.values_list("diversity", flat=True))


def test_arena_on_real_rows_ranks_the_version_annotators_prefer(paradetox, staff, make_user):
    versions = [make_version("stub-a"), make_version("stub-b")]
    comparison = arena.open_comparison(name="real rows", versions=versions, matches_wanted=10, user=staff)
    arena.generate_matches(comparison.pk, generator_factory=StubModels())
    for n in range(3):
        user = make_user(f"judge{n}")
        while (assignment := arena.next_match(user=user, comparison=comparison)) is not None:
            by_version = dict(assignment.item.candidates.values_list("model_version__name", "id"))
            submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=by_version["stub-a"])
    judged = Judgement.objects.filter(item__comparison=comparison).count()
    results = arena.comparison_results(comparison=comparison)
    assert results.judgements == judged >= 10
    assert results.standings[0].version == "stub-a"
    assert PreferencePair.objects.filter(source="arena").count() == judged
    assert set(Prompt.objects.filter(items__comparison=comparison).values_list("source", flat=True)) == {"paradetox"}
