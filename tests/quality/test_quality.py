"""Annotation quality control: metrics on known data, overlap, gold items, the pool's serving order,
the reports and the reviewer dashboard (a spammer is found and their pairs bulk-rejected)."""
from __future__ import annotations

import ast
import random
import re
from pathlib import Path

import pytest
from django.test import Client

from annotations import pool, services
from training import generation
from core.actions import ActionRefused
from annotations.importers import PromptRecord, import_prompts
from annotations.models import AnnotationItem, Candidate, PreferencePair, Prompt
from quality import metrics
from quality.services import annotator_report, make_gold_item, overall_agreement, version_report
from tests.conftest import StubGenerator

BEST = "please be nice"  # of the stub's candidates, the one careful annotators choose
WORST = "kindly stop"


# --- metrics: pure functions on known data ---------------------------------------------------------


def test_alpha_matches_krippendorffs_textbook_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units,
    # missing values; nominal alpha = 0.743.
    N = None
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
    assert metrics.krippendorff_alpha_nominal(zip(*coders)) == pytest.approx(0.743, abs=5e-4)


def test_alpha_matches_the_two_coder_binary_example():
    # Krippendorff, Content Analysis (2004), two observers, ten units: alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert metrics.krippendorff_alpha_nominal(zip(a, b)) == pytest.approx(0.095, abs=5e-4)


def test_alpha_is_one_for_perfect_agreement_and_about_zero_for_random_answers():
    assert metrics.krippendorff_alpha_nominal([["a", "a"], ["b", "b", "b"], ["c", "c"], [7, None, 7]]) == 1.0
    rng = random.Random(0)
    noise = [[rng.choice("abcd") for _ in range(3)] for _ in range(2000)]
    assert metrics.krippendorff_alpha_nominal(noise) == pytest.approx(0.0, abs=0.05)


def test_alpha_is_undefined_without_pairable_units_or_variation():
    assert metrics.krippendorff_alpha_nominal([["a"], [None, "b"], []]) is None
    assert metrics.krippendorff_alpha_nominal([["a", "a"], ["a", "a", "a"]]) is None


def test_alpha_accepts_coder_to_value_mappings():
    units = [{"ann": 1, "bob": 1}, {"ann": 2, "bob": 2, "cat": None}, {"ann": 3}]
    assert metrics.krippendorff_alpha_nominal(units) == 1.0


def test_pairwise_agreement_and_agreement_by_coder():
    units = [{"ann": "x", "bob": "x", "cat": "y"}, {"ann": "z", "bob": "z"}, {"cat": "q"}]
    overall = metrics.pairwise_agreement(units)
    assert (overall.agreeing, overall.compared) == (2, 4) and overall.rate == 0.5
    by_coder = metrics.agreement_by_coder(units)
    assert by_coder["ann"] == metrics.Agreement(2, 3)
    assert by_coder["cat"] == metrics.Agreement(0, 2) and by_coder["cat"].rate == 0
    assert metrics.Agreement(0, 0).rate is None


def test_position_bias_of_always_choosing_the_first():
    bias = metrics.position_bias([(3, 1)] * 9)
    assert [(p.position, p.wins, p.expected, p.ratio) for p in bias.positions] == [(1, 9, 3, 3), (2, 0, 3, 0), (3, 0, 3, 0)]
    assert bias.share(1) == 1 and bias.chance_share(1) == pytest.approx(1 / 3)
    assert bias.chi_square == pytest.approx(18) and bias.p_value < 0.001
    assert bias.favourite.position == 1


def test_position_bias_with_mixed_numbers_shown_and_no_bias():
    bias = metrics.position_bias([(2, 1), (3, 3)])
    assert [p.expected for p in bias.positions] == pytest.approx([1 / 2 + 1 / 3, 1 / 2 + 1 / 3, 1 / 3])
    balanced = metrics.position_bias([(3, 1), (3, 2), (3, 3)] * 5)
    assert balanced.chi_square == pytest.approx(0) and balanced.p_value == pytest.approx(1)
    with pytest.raises(ValueError, match="chosen position 4 is not between 1 and 3"):
        metrics.position_bias([(3, 4)])


def test_position_bias_omits_the_p_value_without_scipy(monkeypatch):
    monkeypatch.setattr(metrics, "chi2", None)
    bias = metrics.position_bias([(3, 1)] * 9)
    assert bias.chi_square == pytest.approx(18) and bias.p_value is None


def test_median():
    assert metrics.median([]) is None
    assert metrics.median([3, 1, 2]) == 2 and metrics.median([1, 2, 3, 10]) == 2.5


def test_metrics_module_never_imports_django():
    tree = ast.parse(Path(metrics.__file__).read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "django"]


# --- helpers: annotators who behave in known ways ------------------------------------------------


def careful(assignment) -> int:
    return Candidate.objects.get(id__in=assignment.candidate_order, text=BEST).id


def contrary(assignment) -> int:
    return Candidate.objects.get(id__in=assignment.candidate_order, text=WORST).id


def first_shown(assignment) -> int:
    return assignment.candidate_order[0]


def annotate_everything(user, pick, *, ms: int) -> int:
    """Let ``user`` judge every item the pool gives them, choosing with ``pick``; returns how many."""
    count = 0
    while (assignment := services.next_assignment(user=user)) is not None:
        services.submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=pick(assignment), time_spent_ms=ms)
        count += 1
    return count


def row(rows, username):
    return next(r for r in rows if r.username == username)


def pool_filled_with(overlap: int, settings, version, generator) -> list[AnnotationItem]:
    settings.ANNOTATION_OVERLAP = overlap
    generation.refill_pool(version.pk, target=Prompt.objects.count(), generator_factory=lambda path: generator)
    return list(AnnotationItem.objects.order_by("id"))


@pytest.fixture
def seeded_shuffles(monkeypatch):
    """Candidate orders from a seeded generator, so which candidate is shown first is reproducible."""
    rng = random.Random(8)  # spam (always the first shown) meets the gold answer first on none of its 3 gold items
    monkeypatch.setattr(services.random, "SystemRandom", lambda: rng)


# --- overlap and gold items ------------------------------------------------------------------------


def test_overlap_keeps_an_item_in_the_pool_until_k_annotators_judged_it(
    settings, make_user, tiny_version, prompts, stub_generator
):
    items = pool_filled_with(2, settings, tiny_version, stub_generator)
    assert {item.judgements_needed for item in items} == {2}
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    assert annotate_everything(ann, careful, ms=5000) == len(items)
    assert pool.ready_count(tiny_version) == len(items)  # each still needs one more annotator
    assert services.next_assignment(user=ann) is None  # nobody sees a prompt twice
    skipped = services.next_assignment(user=bob)
    services.submit_judgement(user=bob, assignment_id=skipped.pk, skip_reason="unclear")
    assert annotate_everything(bob, careful, ms=5000) == len(items) - 1
    assert pool.ready_count(tiny_version) == 1  # a skip does not count towards the overlap
    last = services.next_assignment(user=cat)
    assert last.item_id == skipped.item_id
    services.submit_judgement(user=cat, assignment_id=last.pk, candidate_id=careful(last))
    assert pool.ready_count(tiny_version) == 0 and services.next_assignment(user=cat) is None


def test_gold_items_are_mixed_in_and_scored(settings, make_user, staff, filled_pool):
    settings.GOLD_RATE = 1
    first, second = AnnotationItem.objects.order_by("id")[:2]
    for item in (first, second):
        make_gold_item(item=item, candidate=item.candidates.get(text=BEST), user=staff)
    ann = make_user("ann")
    shown = [services.next_assignment(user=ann)]
    services.submit_judgement(user=ann, assignment_id=shown[0].pk, candidate_id=careful(shown[0]), time_spent_ms=4000)
    shown.append(services.next_assignment(user=ann))
    services.submit_judgement(user=ann, assignment_id=shown[1].pk, candidate_id=contrary(shown[1]), time_spent_ms=4000)
    assert {a.item_id for a in shown} == {first.id, second.id}  # GOLD_RATE=1: gold first while there is any
    assert PreferencePair.objects.count() == 0  # gold answers are tests, not training data
    assert pool.ready_count(filled_pool) == AnnotationItem.objects.count() - 2  # gold left the regular pool
    assert not services.next_assignment(user=ann).item.is_gold  # no gold left for ann: a regular item

    report = row(annotator_report(), "ann")
    assert (report.gold_seen, report.gold_correct, report.gold_accuracy) == (2, 1, 0.5)
    bob = make_user("bob")
    assert services.next_assignment(user=bob).item.is_gold  # gold items never leave the pool


def test_make_gold_item_refusals(make_user, staff, filled_pool):
    item, other = AnnotationItem.objects.order_by("id")[:2]
    foreign = other.candidates.first()
    with pytest.raises(ActionRefused) as refused:
        make_gold_item(item=item, candidate=foreign, user=staff)
    assert refused.value.message == f"Candidate {foreign.pk} is not one of item {item.pk}'s candidates."
    with pytest.raises(ActionRefused) as refused:
        make_gold_item(item=item, candidate=item.candidates.first(), user=make_user("rev", "reviewer"))
    assert (refused.value.message, refused.value.status) == ("Only staff can mark gold items.", 403)
    Prompt.objects.filter(pk=item.prompt_id).update(is_heldout=True)
    with pytest.raises(ActionRefused, match="held-out prompt"):
        make_gold_item(item=item, candidate=item.candidates.first(), user=staff)
    assert not AnnotationItem.objects.filter(gold_candidate__isnull=False).exists()


# --- serving order ---------------------------------------------------------------------------------


def _extra_item(version, text: str, generator) -> AnnotationItem:
    import_prompts([PromptRecord(text, ())], source="test")
    prompt = Prompt.objects.get(text=text)
    Prompt.objects.filter(pk=prompt.pk).update(is_heldout=False)
    return generation.generate_items(
        prompts=[prompt], version=version, generator=generator, decoding=generation.annotation_decoding()
    )[0]


def test_uncertain_order_serves_the_item_with_the_most_different_candidates(settings, annotator, filled_pool):
    settings.POOL_ORDER = "uncertain"
    unsure = _extra_item(filled_pool, "shut up you moron", StubGenerator(("please be quiet", "I disagree with you")))
    assert unsure.diversity > AnnotationItem.objects.exclude(pk=unsure.pk).first().diversity
    assert services.next_assignment(user=annotator).item == unsure


def test_uncertain_order_puts_items_whose_annotators_disagree_first(settings, make_user, tiny_version, prompts, stub_generator):
    items = pool_filled_with(3, settings, tiny_version, stub_generator)
    settings.POOL_ORDER = "uncertain"
    diverse = _extra_item(tiny_version, "shut up you moron", StubGenerator(("please be quiet", "I disagree with you")))
    ann, bob = make_user("ann"), make_user("bob")
    split, split_on_none, agreed = items[3], items[5], items[1]
    for item, (ann_pick, bob_pick) in {split: (careful, contrary), split_on_none: (careful, None), agreed: (careful, careful)}.items():
        for user, pick in ((ann, ann_pick), (bob, bob_pick)):
            shown = services.assign(user=user, item=item)
            if pick is None:
                services.submit_judgement(user=user, assignment_id=shown.pk, own_rewrite="please be quiet")
            else:
                services.submit_judgement(user=user, assignment_id=shown.pk, candidate_id=pick(shown))
    order = list(pool.serving_order(pool.items_for_user(make_user("cat"), tiny_version)).values_list("id", flat=True))
    assert order[:3] == [split.id, split_on_none.id, diverse.id]  # disagreement first (ties by id), then diversity
    assert agreed.id in order[3:]


def test_failures_order_serves_prompts_the_model_echoed_first(settings, annotator, filled_pool):
    settings.POOL_ORDER = "failures"
    echoed = _extra_item(filled_pool, "you are a moron", StubGenerator(("You are a moron.", "please stop", "please stop now")))
    diverse = _extra_item(filled_pool, "shut up you moron", StubGenerator(("please be quiet", "I disagree with you")))
    assert echoed.model_echo == "You are a moron." and diverse.diversity > echoed.diversity
    order = list(pool.serving_order(pool.items_for_user(annotator, filled_pool)).values_list("id", flat=True))
    assert order[:2] == [echoed.id, diverse.id]  # the echoed prompt, then the uncertain order


def test_an_unknown_pool_order_is_refused_at_start_with_the_choices():
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "detoxsite.settings", "POOL_ORDER": "hardest"},
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode != 0
    assert "POOL_ORDER='hardest' is not one of random, uncertain, failures" in result.stderr


def test_default_order_is_random(annotator, filled_pool, settings):
    assert settings.POOL_ORDER == "random"
    firsts = {pool.serving_order(pool.items_for_user(annotator, filled_pool)).first().id for _ in range(30)}
    assert len(firsts) > 1


# --- reports ---------------------------------------------------------------------------------------


def test_alpha_on_known_judgements(settings, make_user, tiny_version, prompts, stub_generator):
    items = pool_filled_with(2, settings, tiny_version, stub_generator)
    ann, bob = make_user("ann"), make_user("bob")
    annotate_everything(ann, careful, ms=5000)
    annotate_everything(bob, careful, ms=5000)
    overall = overall_agreement()
    assert (overall.judgements, overall.overlapping_items, overall.alpha, overall.agreement) == (2 * len(items), len(items), 1.0, 1.0)

    AnnotationItem.objects.update(judgements_needed=3, is_complete=False)
    annotate_everything(make_user("cat"), contrary, ms=5000)
    # per item: two answers agree, one differs; 8 items x 3 values, every value item-specific.
    n = 3 * len(items)
    expected_alpha = 1 - (n - 1) * (len(items) * 2) / (n * n - len(items) * (2 * 2 + 1))
    assert overall_agreement().alpha == pytest.approx(expected_alpha)
    assert row(annotator_report(), "cat").agreement == 0 and row(annotator_report(), "ann").agreement == 0.5


def test_reports_count_skips_and_none_acceptable(annotator, filled_pool):
    for answer in ({"candidate": True}, {"own_rewrite": "please stop"}, {"skip_reason": "unclear"}, {"candidate": True}):
        shown = services.next_assignment(user=annotator)
        if answer.pop("candidate", False):
            answer["candidate_id"] = shown.candidate_order[1]
        services.submit_judgement(user=annotator, assignment_id=shown.pk, time_spent_ms=3000, **answer)
    report = row(annotator_report(), "ann")
    assert (report.judgements, report.skips, report.none_acceptable_rate) == (4, 1, pytest.approx(1 / 3))
    assert (report.position1_share, report.median_seconds, report.pending_pairs) == (0, 3.0, 2 + 3 + 2)
    assert report.agreement is None and report.gold_accuracy is None and report.flags == []
    (version,) = version_report()
    assert (version.name, version.items, version.judgements, version.skips) == ("tiny", 4, 4, 1)
    assert version.none_acceptable_rate == pytest.approx(1 / 3) and version.mean_chosen_position == 2
    assert version.alpha is None and version.overlapping_items == 0


@pytest.fixture
def spammer_scenario(settings, seeded_shuffles, make_user, staff, tiny_version, prompts, stub_generator):
    """Three annotators see every item (overlap 3), three of them gold: two careful ones and a
    spammer who always takes the first candidate shown, in well under a second."""
    items = pool_filled_with(3, settings, tiny_version, stub_generator)
    for item in items[:3]:
        make_gold_item(item=item, candidate=item.candidates.get(text=BEST), user=staff)
    settings.GOLD_RATE = 1
    for username, pick, ms in (("alice", careful, 6500), ("spam", first_shown, 400), ("bob", careful, 5200)):
        assert annotate_everything(make_user(username), pick, ms=ms) == len(items)
    return items


def test_spammer_is_flagged_by_gold_accuracy_time_and_position_bias(spammer_scenario):
    rows = annotator_report()
    spam, alice = row(rows, "spam"), row(rows, "alice")
    assert rows[0] is spam  # flagged annotators come first
    assert spam.position1_share == 1 and spam.position1_chance == pytest.approx(1 / 3)
    assert spam.gold_seen == 3 and spam.gold_accuracy < 0.6
    assert spam.agreement < 0.5 <= alice.agreement
    assert spam.flags == [
        f"gold accuracy {spam.gold_accuracy:.0%} below 60%",
        "median 0.4 s per item, under 2 s",
        "favours position 1: 100% of choices, 33% by chance",
    ]
    assert (alice.gold_accuracy, alice.median_seconds, alice.flags) == (1.0, 6.5, [])
    assert (spam.pending_pairs, spam.rejected_pairs) == (10, 0)  # 5 regular items x 2 rejected candidates

    (tiny,) = version_report()
    assert (tiny.items, tiny.judgements, tiny.overlapping_items) == (5, 15, 5)  # gold items left out
    assert tiny.position_bias.positions[0].wins >= 5 and 0 < tiny.alpha < 1


def test_reviewer_finds_the_spammer_on_the_dashboard_and_rejects_their_pairs(reviewer, spammer_scenario):
    client = Client()
    client.force_login(reviewer)
    dashboard = client.get("/quality/").content.decode()
    assert "favours position 1: 100% of choices, 33% by chance" in dashboard
    assert 'href="/review/?annotator=spam&amp;status=pending"' in dashboard
    assert "Krippendorff" in dashboard and "tiny" in dashboard

    review_page = client.get("/review/?annotator=spam&status=pending").content.decode()
    assert "10 pair(s)" in review_page
    ids = re.findall(r'name="ids" value="(\d+)"', review_page)
    response = client.post(
        "/review/bulk/", {"ids": ids, "action": "reject", "next": "/review/?annotator=spam&status=pending"}, follow=True
    )
    assert "reject: 10 pair(s) updated." in response.content.decode()
    assert PreferencePair.objects.filter(judgement__user__username="spam", status="rejected").count() == 10
    assert PreferencePair.objects.filter(judgement__user__username="alice", status="pending").count() == 10
    spam = row(annotator_report(), "spam")
    assert (spam.pending_pairs, spam.rejected_pairs) == (0, 10)


def test_quality_api_reports(api, reviewer, spammer_scenario):
    client = api(reviewer)
    body = client.get("/api/quality/annotators/").json()
    assert body["overall"]["overlapping_items"] == 8 and body["thresholds"]["min_gold_accuracy"] == 0.6
    spam = next(r for r in body["results"] if r["username"] == "spam")
    assert spam["position1_share"] == 1 and spam["position_bias"]["positions"][0]["wins"] == 8
    assert len(spam["flags"]) == 3
    assert client.get("/api/quality/annotators/?version=tiny").json()["overall"]["judgements"] == 24
    assert client.get("/api/quality/annotators/?version=nope").status_code == 404
    versions = client.get("/api/quality/versions/").json()["results"]
    assert [(v["name"], v["judgements"]) for v in versions] == [("tiny", 15)]
    gold = client.get("/api/quality/gold/").json()["results"]  # paginated like every list
    assert len(gold) == 3 and {g["answered"] for g in gold} == {3} and all(g["gold_text"] == BEST for g in gold)


def test_the_detoxifierai_importer_is_no_annotator_in_the_reports(api, reviewer, annotator, filled_pool, tiny_version, tmp_path):
    """Its judgements are a file's choices (always position 1, no time spent), not a person's."""
    import json

    from annotations.detoxifierai import import_preferences, read_preferences
    from annotations.models import Judgement
    from core.roles import is_system_account

    path = tmp_path / "user_preferences.json"
    path.write_text(json.dumps(
        [{"toxic": f"you dumb fool {i}", "chosen": f"you are wrong {i}", "rejected": [f"you fool {i}"]} for i in range(5)]
    ))
    import_preferences(read_preferences(path), version=tiny_version)
    assert Judgement.objects.filter(user__username="detoxifierai").count() == 5
    assert is_system_account(Judgement.objects.filter(user__username="detoxifierai").first().user)
    for _ in range(2):
        shown = services.next_assignment(user=annotator)
        services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[1], time_spent_ms=3000)
    assert [r.username for r in annotator_report()] == ["ann"] and not is_system_account(annotator)
    assert overall_agreement().judgements == 2
    (version,) = version_report()
    assert version.judgements == 2 and version.mean_chosen_position == 2
    body = api(reviewer).get("/api/quality/annotators/").json()
    assert [r["username"] for r in body["results"]] == ["ann"] and body["overall"]["judgements"] == 2
    client = Client()
    client.force_login(reviewer)
    assert "detoxifierai" not in client.get("/quality/").content.decode()


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, page, annotators_api, versions_api, gold_page",
    [
        ("anonymous", 302, 401, 401, 302),  # 401 + WWW-Authenticate: Token (token auth listed first)
        ("annotator", 403, 403, 403, 302),
        ("reviewer", 200, 200, 200, 302),
        ("admin", 200, 200, 200, 200),
    ],
)
def test_role_matrix_for_dashboard_and_api(make_user, api, filled_pool, role, page, annotators_api, versions_api, gold_page):
    user = None if role == "anonymous" else make_user(f"{role}-user", role)
    web, rest = Client(), api(user)
    if user is not None:
        web.force_login(user)
    assert web.get("/quality/").status_code == page
    assert web.get("/quality/gold/").status_code == gold_page  # staff only; others are sent to log in
    assert rest.get("/api/quality/annotators/").status_code == annotators_api
    assert rest.get("/api/quality/versions/").status_code == versions_api


@pytest.mark.parametrize("role", ["annotator", "reviewer"])
def test_denies_non_staff_to_mark_gold(make_user, api, filled_pool, role):
    item = AnnotationItem.objects.first()
    response = api(make_user("someone", role)).post(
        "/api/quality/gold/", {"item": item.pk, "candidate": item.candidates.first().pk}, format="json"
    )
    assert response.status_code == 403 and response.json()["detail"] == "Only staff can do this."
    assert not AnnotationItem.objects.filter(gold_candidate__isnull=False).exists()


def test_staff_marks_gold_through_the_api(api, staff, filled_pool):
    item, other = AnnotationItem.objects.order_by("id")[:2]
    best = item.candidates.get(text=BEST)
    client = api(staff)
    response = client.post("/api/quality/gold/", {"item": item.pk, "candidate": best.pk}, format="json")
    assert response.status_code == 201
    assert response.json() == {
        "item": item.pk, "prompt": item.prompt.text, "model_version": "tiny", "candidate": best.pk, "gold_text": BEST,
    }
    foreign = other.candidates.first()
    response = client.post("/api/quality/gold/", {"item": item.pk, "candidate": foreign.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"Candidate {foreign.pk} is not one of item {item.pk}'s candidates."
    assert client.post("/api/quality/gold/", {"item": 999999, "candidate": best.pk}, format="json").status_code == 404
    assert AnnotationItem.objects.get(pk=item.pk).gold_candidate == best


def test_staff_marks_gold_on_the_gold_page(staff, filled_pool):
    item = AnnotationItem.objects.first()
    best = item.candidates.get(text=BEST)
    client = Client()
    client.force_login(staff)
    page = client.get(f"/quality/gold/?item={item.pk}").content.decode()
    assert item.prompt.text in page and BEST in page and "Mark as gold answer" in page
    response = client.post("/quality/gold/", {"item": item.pk, "candidate": best.pk}, follow=True)
    assert f"Item {item.pk} is now a gold item: &#x27;{BEST}&#x27;." in response.content.decode()
    assert AnnotationItem.objects.get(pk=item.pk).gold_candidate == best


def test_admin_filters_gold_items_and_shows_the_answer_read_only(staff, filled_pool):
    item = AnnotationItem.objects.first()
    make_gold_item(item=item, candidate=item.candidates.get(text=BEST), user=staff)
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/annotations/annotationitem/?gold_candidate__isempty=0").content.decode()
    assert "1 annotation item" in listing
    change = client.get(f"/admin/annotations/annotationitem/{item.pk}/change/").content.decode()
    assert BEST in change and 'name="gold_candidate"' not in change
