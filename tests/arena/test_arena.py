"""The blind A/B arena: ratings maths, opening comparisons, generating matches (stub and a real RQ
worker on the tiny model), serving them blind (a request may wait for one), judging, results, roles and bad input."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from annotations.models import AnnotationItem, Assignment, Candidate, Judgement, PreferencePair, Prompt
from core.actions import ActionRefused
from arena import services
from arena.models import Comparison
from arena.results import compute_results
from tests.conftest import PerPromptSampling, run_jobs, waiting_request
from training.ml.generate import SampledRewrite
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

# Stub outputs name no version, so a version name in a payload can only come from a leak.
STYLES = {"stub-a": "please, kindly", "stub-b": "with respect,", "stub-c": "gently,"}


class StubModels:
    """A ``generator_factory``: each checkpoint directory writes in its own style; records loads."""

    def __init__(self, *, same_text: bool = False, fail: bool = False) -> None:
        self.loads: list[str] = []
        self.same_text = same_text
        self.fail = fail

    def __call__(self, path: str):
        name = Path(path).name
        self.loads.append(name)
        models = self

        class Generator(PerPromptSampling):
            def sample(self, toxic, config, *, seed):
                assert config.num_candidates == 1
                if models.fail:
                    raise RuntimeError("checkpoint is corrupt")
                text = "please be kind" if models.same_text else f"{STYLES[name]} stop that, number {toxic[-1]}"
                return [SampledRewrite(text=text, seed=seed, index=0, seconds=0.01)]

        return Generator()


def make_version(name: str, *, copy_weights_of: ModelVersion | None = None) -> ModelVersion:
    path = Path(django_settings.MODEL_STORE) / name
    if copy_weights_of is not None:
        shutil.copytree(copy_weights_of.path, path, dirs_exist_ok=True)
    else:
        path.mkdir(parents=True, exist_ok=True)
    return ModelVersion.objects.create(name=name, kind="sft", directory=name)


@pytest.fixture
def stub_versions(db):
    return [make_version(name) for name in STYLES]


@pytest.fixture
def comparison(stub_versions, prompts, staff):
    """An open comparison of two stub versions with one match per prompt, generated in-process."""
    opened = services.open_comparison(
        name="a vs b", versions=stub_versions[:2], matches_wanted=len(prompts), user=staff
    )
    services.generate_matches(opened.pk, generator_factory=StubModels())
    opened.refresh_from_db()
    return opened


def next_match(client, **params):
    response = client.get("/api/arena/next/", params)
    assert response.status_code == 200, response.content
    return response.json()


def judge(client, assignment_id, **fields):
    return client.post("/api/arena/judgements/", {"assignment": assignment_id, **fields}, format="json")


def side_versions(assignment_id: int) -> list[str]:
    assignment = Assignment.objects.get(pk=assignment_id)
    names = dict(Candidate.objects.filter(id__in=assignment.candidate_order).values_list("id", "model_version__name"))
    return [names[cid] for cid in assignment.candidate_order]


# --- results maths -------------------------------------------------------------------------------


def test_clearly_better_version_rates_higher_with_an_interval_excluding_the_other():
    wins = [("good", "bad")] * 140 + [("bad", "good")] * 60
    results = compute_results(wins, [("good", "bad")] * 20)
    good, bad = results.standings
    assert (good.version, bad.version) == ("good", "bad")
    assert good.rating > 1000 > bad.rating
    assert good.ci_low > bad.rating and bad.ci_high < good.rating
    assert good.ci_low < good.rating < good.ci_high
    assert (good.wins, good.losses, good.ties, good.judgements) == (140, 60, 20, 220)
    assert good.win_rate == pytest.approx((140 + 10) / 220)
    assert results.win_rates["good"]["bad"] == pytest.approx(150 / 220)
    assert results.win_rates["bad"]["good"] == pytest.approx(70 / 220)
    assert results.pair_judgements["good"]["bad"] == 220
    assert (results.judgements, results.ties, results.interval) == (220, 20, "laplace")


def test_ties_count_half_a_win_each_way():
    results = compute_results([], [("x", "y")] * 30)
    x, y = results.standings
    assert x.rating == pytest.approx(1000) and y.rating == pytest.approx(1000)
    assert x.win_rate == 0.5 and results.win_rates["x"]["y"] == 0.5 and x.ties == 30


def test_three_versions_are_ordered_and_unmet_pairs_have_no_win_rate():
    wins = [("a", "b")] * 30 + [("b", "a")] * 10 + [("b", "c")] * 30 + [("c", "b")] * 10
    results = compute_results(wins, versions=["c", "b", "a", "unplayed"])
    assert [s.version for s in results.standings][:1] == ["a"]
    ratings = {s.version: s for s in results.standings}
    assert ratings["a"].rating > ratings["b"].rating > ratings["c"].rating
    assert results.win_rates["a"]["c"] is None and results.pair_judgements["a"]["c"] == 0
    assert ratings["unplayed"].judgements == 0 and ratings["unplayed"].ci_low is None
    assert ratings["unplayed"].win_rate is None


def test_a_clean_sweep_has_an_open_interval_that_more_games_narrow():
    """6–0 is strong evidence, not certainty: the interval has width and holds the estimate."""
    sweep = {s.version: s for s in compute_results([("a", "b")] * 6).standings}
    a = sweep["a"]
    assert a.rating > 1000 and a.ci_low < a.rating < a.ci_high and a.ci_high - a.ci_low > 100
    assert sweep["b"].ci_high > 1000 > sweep["b"].rating
    longer = {s.version: s for s in compute_results([("a", "b")] * 60).standings}["a"]
    assert longer.ci_low > a.ci_low  # sixty straight wins are surer than six
    few = compute_results([("a", "b")] * 6 + [("b", "a")] * 4).standings[0]
    many = compute_results([("a", "b")] * 60 + [("b", "a")] * 40).standings[0]
    assert many.ci_high - many.ci_low < (few.ci_high - few.ci_low) / 2.5  # about 1/sqrt(10)
    assert many.ci_low < many.rating < many.ci_high


def test_results_are_deterministic_and_empty_input_has_no_intervals():
    wins = [("a", "b")] * 12 + [("b", "a")] * 8
    assert compute_results(wins) == compute_results(wins)
    empty = compute_results([], versions=["a", "b"])
    assert [s.ci_low for s in empty.standings] == [None, None] and empty.judgements == 0
    with pytest.raises(ValueError, match="cannot play itself"):
        compute_results([("a", "a")])


# --- opening and generating ----------------------------------------------------------------------


def test_opening_with_fewer_than_two_distinct_versions_is_refused(stub_versions, prompts, staff):
    with pytest.raises(ActionRefused, match=r"at least two different model versions; 1 given"):
        services.open_comparison(name="solo", versions=[stub_versions[0], stub_versions[0]], matches_wanted=5, user=staff)
    assert not Comparison.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_staff_open_comparison_via_api_and_a_real_rq_worker_generates_matches(api, staff, tiny_version, prompts):
    copy = make_version("tiny-copy", copy_weights_of=tiny_version)
    response = api(staff).post(
        "/api/arena/comparisons/", {"name": "tiny vs copy", "versions": [tiny_version.pk, copy.pk], "matches_wanted": 4},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["matches_ready"] == 0
    assert {v["name"] for v in body["versions"]} == {"tiny", "tiny-copy"}

    run_jobs("evaluation")

    comparison = Comparison.objects.with_counts().get(pk=body["id"])
    assert comparison.status == "ready" and comparison.generated_at is not None
    assert comparison.matches_ready + comparison.identical_skipped >= 1
    assert comparison.matches_ready <= 4
    for item in AnnotationItem.objects.filter(comparison=comparison):
        assert item.kind == "arena" and item.model_version is None and not item.prompt.is_heldout
        candidates = list(item.candidates.all())
        assert len(candidates) == 2
        assert {c.model_version.name for c in candidates} == {"tiny", "tiny-copy"}
        assert candidates[0].text != candidates[1].text
        assert all(c.decoding["num_candidates"] == 1 and c.seed >= 0 and c.generation_seconds > 0 for c in candidates)


def test_matches_spread_over_version_pairs_without_repeating_a_prompt_pair(stub_versions, prompts, staff):
    Prompt.objects.filter(pk=prompts[0].pk).update(is_heldout=True)
    opened = services.open_comparison(name="three", versions=stub_versions, matches_wanted=14, user=staff)
    models = StubModels()
    assert services.generate_matches(opened.pk, generator_factory=models, chunk_size=10) == 14
    items = AnnotationItem.objects.filter(comparison=opened).prefetch_related("candidates__model_version")
    combos = [(item.prompt_id, frozenset(c.model_version.name for c in item.candidates.all())) for item in items]
    assert len(combos) == len(set(combos)) == 14
    assert all(len(pair) == 2 for _, pair in combos)
    assert prompts[0].pk not in {prompt_id for prompt_id, _ in combos}
    per_pair = {pair: sum(1 for _, p in combos if p == pair) for pair in {p for _, p in combos}}
    assert len(per_pair) == 3 and max(per_pair.values()) - min(per_pair.values()) <= 1
    # Two chunks, each asking for the three versions once, the second starting with the one still loaded.
    assert len(models.loads) == 6 and models.loads[3] == models.loads[2]
    opened.refresh_from_db()
    assert opened.status == "ready"
    assert services.generate_matches(opened.pk, generator_factory=models) == 0  # already done: not re-run


def test_identical_outputs_are_dropped_and_counted(stub_versions, prompts, staff):
    opened = services.open_comparison(name="same", versions=stub_versions[:2], matches_wanted=3, user=staff)
    assert services.generate_matches(opened.pk, generator_factory=StubModels(same_text=True)) == 0
    opened.refresh_from_db()
    assert opened.identical_skipped == len(prompts) and opened.status == "ready"
    assert not AnnotationItem.objects.filter(comparison=opened).exists()


def test_failed_generation_is_recorded_on_the_row_and_can_be_retried(stub_versions, prompts, staff):
    opened = services.open_comparison(name="broken", versions=stub_versions[:2], matches_wanted=2, user=staff)
    with pytest.raises(RuntimeError):
        services.generate_matches(opened.pk, generator_factory=StubModels(fail=True))
    opened.refresh_from_db()
    assert opened.status == "failed" and "checkpoint is corrupt" in opened.error
    services.retry_generation(comparison=opened)
    assert services.generate_matches(opened.pk, generator_factory=StubModels()) == 2
    opened.refresh_from_db()
    assert opened.status == "ready" and opened.error == ""


# --- serving and judging -------------------------------------------------------------------------


def test_next_match_shows_two_unlabelled_sides_and_hides_versions(api, annotator, comparison):
    response = api(annotator).get("/api/arena/next/")
    payload = response.json()
    assert payload["status"] == "ready"
    match = payload["assignment"]
    assert set(match) == {"id", "comparison", "prompt", "candidates", "shown_at"}
    assert [c["position"] for c in match["candidates"]] == ["A", "B"]
    assert all(set(c) == {"id", "position", "text"} for c in match["candidates"])
    content = response.content.decode()
    assert not any(name in content for name in ("stub-a", "stub-b", "model_version", "seed"))
    assert sorted(side_versions(match["id"])) == ["stub-a", "stub-b"]
    assert next_match(api(annotator))["assignment"]["id"] == match["id"]  # a reload shows the same match


def test_sides_are_randomised_and_a_prompt_is_never_shown_twice_per_comparison(api, make_user, stub_versions, prompts, staff, settings):
    settings.ANNOTATION_OVERLAP = 3
    opened = services.open_comparison(name="three", versions=stub_versions, matches_wanted=16, user=staff)
    services.generate_matches(opened.pk, generator_factory=StubModels())
    first_sides = []
    for n in range(3):
        client = api(make_user(f"arena{n}"))
        seen_prompts = []
        while (payload := next_match(client))["status"] == "ready":
            match = payload["assignment"]
            seen_prompts.append(match["prompt"])
            first_sides.append(side_versions(match["id"])[0])
            assert judge(client, match["id"], tie=True).status_code == 201
        assert payload["status"] == "exhausted"
        assert payload["message"] == "You have judged every available arena match. Thank you!"
        assert len(seen_prompts) == len(set(seen_prompts)) == len(prompts)
    assert len(set(first_sides)) == 3  # every version turned up on side A


def test_choosing_a_side_makes_a_pending_arena_pair_for_reviewers(api, annotator, reviewer, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    chosen = match["candidates"][1]
    response = judge(client, match["id"], candidate=chosen["id"], time_spent_ms=900)
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "choice" and response.json()["chosen_side"] == "B"
    pair = PreferencePair.objects.get()
    winner = Candidate.objects.get(pk=chosen["id"])
    assert (pair.source, pair.status, pair.chosen_text) == ("arena", "pending", chosen["text"])
    assert pair.rejected_text == match["candidates"][0]["text"]
    assert pair.model_version == winner.model_version
    listed = api(reviewer).get("/api/pairs/", {"source": "arena"}).json()
    assert [p["id"] for p in listed["results"]] == [pair.pk]
    assert api(reviewer).get("/api/pairs/", {"source": "annotation"}).json()["count"] == 0
    assert judge(client, match["id"], candidate=chosen["id"]).status_code == 200  # a double submit changes nothing
    assert PreferencePair.objects.count() == 1


def test_tie_and_skip_make_no_pair(api, annotator, comparison):
    client = api(annotator)
    first = next_match(client)["assignment"]
    assert judge(client, first["id"], tie=True).json()["kind"] == "tie"
    second = next_match(client)["assignment"]
    assert judge(client, second["id"], skip_reason="unclear").json()["kind"] == "skip"
    assert PreferencePair.objects.count() == 0
    assert next_match(client)["judged"] == 1


def test_results_report_win_rates_ratings_intervals_and_counts(api, make_user, reviewer, comparison):
    for n in range(len(Prompt.objects.all())):
        client = api(make_user(f"judge{n}"))
        match = next_match(client)["assignment"]
        sides = side_versions(match["id"])
        if n == 0:
            assert judge(client, match["id"], tie=True).status_code == 201
        else:  # stub-a always wins
            winner = match["candidates"][sides.index("stub-a")]
            assert judge(client, match["id"], candidate=winner["id"]).status_code == 201
    services.close_comparison(comparison=comparison)  # reviewers see results once judging is over
    response = api(reviewer).get(f"/api/arena/comparisons/{comparison.pk}/results/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["judgements"] == 8 and body["ties"] == 1 and body["skips"] == 0 and "Laplace" in body["method"]
    best, worst = body["standings"]
    assert (best["version"], worst["version"]) == ("stub-a", "stub-b")
    assert best["version_id"] == ModelVersion.objects.get(name="stub-a").pk
    assert (best["wins"], best["losses"], best["ties"], best["judgements"]) == (7, 0, 1, 8)
    assert best["win_rate"] == pytest.approx(7.5 / 8)
    assert best["ci_low"] <= best["rating"] <= best["ci_high"] and best["rating"] > worst["rating"]
    assert body["win_rates"]["stub-a"]["stub-b"] == pytest.approx(7.5 / 8)
    assert body["pair_judgements"]["stub-b"]["stub-a"] == 8
    assert body["comparison"]["judgements"] == 8

    page = api(reviewer)
    page.force_login(reviewer)
    html = page.get(f"/arena/comparisons/{comparison.pk}/").content.decode()
    assert "stub-a" in html and "Head to head" in html and "0.94" in html


# --- roles ---------------------------------------------------------------------------------------


def test_annotator_cannot_open_list_close_or_see_results(api, annotator, stub_versions, comparison):
    client = api(annotator)
    opening = {"name": "x", "versions": [v.pk for v in stub_versions], "matches_wanted": 3}
    assert client.post("/api/arena/comparisons/", opening, format="json").status_code == 403
    assert client.get("/api/arena/comparisons/").status_code == 403
    assert client.post(f"/api/arena/comparisons/{comparison.pk}/close/").status_code == 403
    assert client.get(f"/api/arena/comparisons/{comparison.pk}/results/").status_code == 403


def test_reviewer_reads_comparisons_and_results_but_cannot_open_or_close(api, reviewer, stub_versions, comparison):
    client = api(reviewer)
    listed = client.get("/api/arena/comparisons/").json()["results"]
    assert [c["name"] for c in listed] == ["a vs b"] and listed[0]["matches_ready"] == 8
    assert client.get(f"/api/arena/comparisons/{comparison.pk}/results/").status_code == 403  # open: blind
    opening = {"name": "x", "versions": [v.pk for v in stub_versions], "matches_wanted": 3}
    assert client.post("/api/arena/comparisons/", opening, format="json").status_code == 403
    assert client.post(f"/api/arena/comparisons/{comparison.pk}/close/").status_code == 403


def test_staff_open_and_close_and_closed_comparisons_are_not_served(api, staff, annotator, stub_versions, comparison):
    client = api(staff)
    one = client.post("/api/arena/comparisons/", {"name": "solo", "versions": [stub_versions[0].pk], "matches_wanted": 3}, format="json")
    assert one.status_code == 400
    assert one.json()["detail"] == "A comparison needs at least two different model versions; 1 given."
    closed = client.post(f"/api/arena/comparisons/{comparison.pk}/close/")
    assert closed.status_code == 200 and closed.json()["is_open"] is False and closed.json()["closed_at"]
    again = client.post(f"/api/arena/comparisons/{comparison.pk}/close/")
    assert again.status_code == 409 and again.json()["detail"] == "Comparison “a vs b” is already closed."
    payload = next_match(api(annotator))
    assert payload["status"] == "exhausted" and payload["message"] == "No arena comparison is open right now."


def test_annotator_is_told_to_wait_while_matches_are_generated(api, annotator, stub_versions, prompts, staff):
    opened = services.open_comparison(name="pending", versions=stub_versions[:2], matches_wanted=2, user=staff)
    payload = next_match(api(annotator))
    assert payload["status"] == "generating" and payload["assignment"] is None
    services.generate_matches(opened.pk, generator_factory=StubModels())
    assert next_match(api(annotator), comparison=opened.pk)["status"] == "ready"


# --- waiting for a match (long poll) -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("of_the_comparison", [False, True], ids=["any-comparison", "this-comparison"])
def test_a_waiting_arena_request_returns_a_match_generated_during_the_wait(
    api, annotator, stub_versions, prompts, staff, settings, of_the_comparison
):
    # No periodic re-check within the wait: only the generation job's Redis signal can end it with a match.
    settings.NEXT_ITEM_RECHECK_SECONDS = 60
    opened = services.open_comparison(name="pending", versions=stub_versions[:2], matches_wanted=4, user=staff)
    query = f"wait=20&comparison={opened.pk}" if of_the_comparison else "wait=20"
    answer = waiting_request(api(annotator), f"/api/arena/next/?{query}")
    services.generate_matches(opened.pk, generator_factory=StubModels())
    response, seconds = answer()
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready" and body["assignment"]["comparison"] == opened.pk
    assert seconds < 15  # woken by the signal, not by the end of the wait


def test_a_wait_with_no_matches_being_generated_answers_at_once(api, annotator, comparison):
    services.close_comparison(comparison=comparison)
    started = time.monotonic()
    payload = next_match(api(annotator), wait=20)
    assert payload["status"] == "exhausted" and payload["message"] == "No arena comparison is open right now."
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "query, body",
    [
        ("wait=26", {"wait": ["Ensure this value is less than or equal to 25."]}),
        ("wait=-1", {"wait": ["Ensure this value is greater than or equal to 0."]}),
        ("wait=soon", {"wait": ["A valid integer is required."]}),
        ("comparison=first", {"comparison": ["A valid integer is required."]}),
    ],
)
def test_a_bad_wait_or_comparison_is_refused_with_a_message(api, annotator, query, body):
    response = api(annotator).get(f"/api/arena/next/?{query}")
    assert response.status_code == 400 and response.json() == body


def test_the_openapi_schema_documents_the_wait_parameter(api, annotator):
    schema = api(annotator).get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/arena/next/"]["get"]["parameters"]}
    assert set(parameters) == {"comparison", "wait"}
    wait = parameters["wait"]
    assert wait["in"] == "query" and wait["schema"]["minimum"] == 0 and wait["schema"]["maximum"] == 25
    assert "Seconds to wait on the server" in wait["description"]


# --- bad input -----------------------------------------------------------------------------------


def test_candidate_from_another_match_is_refused(api, annotator, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    stranger = Candidate.objects.exclude(item__assignments=match["id"]).first()
    response = judge(client, match["id"], candidate=stranger.pk)
    assert response.status_code == 400
    assert response.json()["detail"] == f"Candidate {stranger.pk} was not shown to you for this item."
    assert not Judgement.objects.exists()


def test_another_users_match_is_not_found(api, annotator, make_user, comparison):
    match = next_match(api(annotator))["assignment"]
    response = judge(api(make_user("intruder")), match["id"], tie=True)
    assert response.status_code == 404
    assert response.json()["detail"] == f"Item assignment {match['id']} was not shown to you."


def test_tie_on_a_best_of_n_item_is_refused(api, annotator, filled_pool):
    client = api(annotator)
    item = client.get("/api/annotate/next/").json()["assignment"]
    response = judge(client, item["id"], tie=True)
    assert response.status_code == 400 and response.json()["detail"] == "A tie can only be given in an arena match."


def test_ambiguous_or_own_rewrite_answers_are_refused(api, annotator, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    both = judge(client, match["id"], candidate=match["candidates"][0]["id"], tie=True)
    assert both.status_code == 400
    assert both.json()["non_field_errors"] == ["Give exactly one of: a candidate id, tie: true, or a skip reason."]
    assert judge(client, match["id"]).status_code == 400
    own = client.post("/api/judgements/", {"assignment": match["id"], "own_rewrite": "my own"}, format="json")
    assert own.status_code == 400
    assert own.json()["detail"] == "An arena match takes a choice of A or B, a tie or a skip, not your own rewrite."
    assert not Judgement.objects.exists()


# --- pages ---------------------------------------------------------------------------------------


def test_arena_page_for_everyone_and_comparisons_page_for_reviewers_and_staff(client, annotator, reviewer, staff, comparison):
    client.force_login(annotator)
    page = client.get("/arena/").content.decode()
    assert "Which rewrite is better?" in page and "js/judge.js" in page and 'href="/arena/"' in page
    assert 'data-wait="20"' in page  # the page waits on the server for matches, like the annotate page
    assert client.get("/arena/comparisons/").status_code == 403
    assert client.get(f"/arena/comparisons/{comparison.pk}/").status_code == 403
    client.force_login(reviewer)
    listing = client.get("/arena/comparisons/").content.decode()
    assert "a vs b" in listing and "Open a comparison" not in listing
    assert client.post("/arena/comparisons/", {"name": "x"}).status_code == 403
    client.force_login(staff)
    assert "Open a comparison" in client.get("/arena/comparisons/").content.decode()


def test_staff_open_a_comparison_from_the_page_and_close_it(client, staff, stub_versions, prompts):
    client.force_login(staff)
    refused = client.post("/arena/comparisons/", {"name": "solo", "versions": [stub_versions[0].pk], "matches_wanted": 5})
    assert "at least two different model versions" in refused.content.decode()
    response = client.post(
        "/arena/comparisons/", {"name": "b vs c", "versions": [v.pk for v in stub_versions[1:]], "matches_wanted": 5}, follow=True
    )
    assert "Comparison “b vs c” opened" in response.content.decode()
    opened = Comparison.objects.get(name="b vs c")
    assert {v.name for v in opened.versions.all()} == {"stub-b", "stub-c"} and opened.created_by == staff
    closed = client.post(f"/arena/comparisons/{opened.pk}/close/", follow=True)
    assert "Comparison “b vs c” closed." in closed.content.decode()
    assert Comparison.objects.get(pk=opened.pk).is_open is False




def test_admin_lists_comparisons_and_closes_them_with_an_action(client, staff, comparison):
    client.force_login(staff)
    page = client.get("/admin/arena/comparison/")
    assert page.status_code == 200 and "a vs b" in page.content.decode() and "stub-a, stub-b" in page.content.decode()
    assert client.get("/admin/arena/comparison/add/").status_code == 403  # opening goes through the service
    client.post("/admin/arena/comparison/", {"action": "close_selected", "_selected_action": [comparison.pk]})
    assert Comparison.objects.get(pk=comparison.pk).is_open is False


# Arena items have no item-level model_version: readers of judgements must cope with that.
def test_my_judgements_list_includes_arena_judgements(api, annotator, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    judge(client, match["id"], candidate=match["candidates"][0]["id"])
    listed = client.get("/api/judgements/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["kind"] == "choice"
    assert listed.json()["results"][0]["model_version"] is None  # blind: the winner's version is not shown


def test_judgement_export_includes_arena_judgements(api, annotator, staff, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    judge(client, match["id"], tie=True)
    export = api(staff).get("/api/exports/judgements.jsonl")
    record = json.loads(b"".join(export.streaming_content).splitlines()[0])
    assert record["kind"] == "tie"
    assert record["item_kind"] == "arena" and record["comparison_id"] == comparison.id
    assert record["model_version"] is None
    assert len({c["model_version"] for c in record["shown_candidates"]}) == 2  # each side keeps its provenance


# --- blindness while a comparison is open (hardening) ------------------------------------------------


def test_pairs_and_exports_hide_versions_from_reviewers_while_open(api, annotator, reviewer, staff, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    winner = Candidate.objects.get(pk=match["candidates"][0]["id"])
    assert judge(client, match["id"], candidate=winner.pk).status_code == 201
    pair = PreferencePair.objects.get()

    listed = api(reviewer).get("/api/pairs/", {"source": "arena"}).json()["results"][0]
    assert (listed["model_version"], listed["chosen_candidate"], listed["rejected_candidate"]) == (None, None, None)
    assert api(reviewer).get(f"/api/pairs/{pair.pk}/").json()["model_version"] is None
    assert api(reviewer).get("/api/pairs/", {"model_version": winner.model_version.name}).json()["count"] == 0
    exported = api(reviewer).get("/api/exports/preferences.jsonl", {"status": "all"})
    record = json.loads(b"".join(exported.streaming_content).splitlines()[0])
    assert (record["model_version"], record["model_version_id"]) == (None, None)
    judgements = api(reviewer).get("/api/exports/judgements.jsonl")
    shown = json.loads(b"".join(judgements.streaming_content).splitlines()[0])["shown_candidates"]
    assert {c["model_version"] for c in shown} == {None}

    assert api(staff).get(f"/api/pairs/{pair.pk}/").json()["model_version"] == winner.model_version.name
    services.close_comparison(comparison=comparison)
    assert api(reviewer).get(f"/api/pairs/{pair.pk}/").json()["model_version"] == winner.model_version.name
    assert api(reviewer).get("/api/pairs/", {"model_version": winner.model_version.name}).json()["count"] == 1


def test_live_results_are_for_staff_only_while_open(api, client, reviewer, staff, comparison):
    response = api(reviewer).get(f"/api/arena/comparisons/{comparison.pk}/results/")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "Results of “a vs b” are hidden from non-staff while it is open, so judging stays blind; "
        "they appear when staff close it."
    )
    client.force_login(reviewer)
    assert client.get(f"/arena/comparisons/{comparison.pk}/").status_code == 403
    assert api(staff).get(f"/api/arena/comparisons/{comparison.pk}/results/").status_code == 200
    services.close_comparison(comparison=comparison)
    assert client.get(f"/arena/comparisons/{comparison.pk}/").status_code == 200


def test_choices_after_the_comparison_closed_are_refused(api, annotator, comparison):
    client = api(annotator)
    match = next_match(client)["assignment"]
    services.close_comparison(comparison=comparison)
    response = judge(client, match["id"], candidate=match["candidates"][0]["id"])
    assert response.status_code == 409
    assert response.json()["detail"] == "Comparison “a vs b” is closed; it takes no more choices."
    assert not Judgement.objects.exists() and not PreferencePair.objects.exists()


def test_arena_time_spent_is_measured_by_the_server(api, annotator, comparison):
    from datetime import timedelta

    from django.utils import timezone

    client = api(annotator)
    match = next_match(client)["assignment"]
    Assignment.objects.filter(pk=match["id"]).update(shown_at=timezone.now() - timedelta(seconds=3))
    saved = judge(client, match["id"], tie=True, time_spent_ms=50).json()
    assert 3000 <= saved["time_spent_ms"] < 60000
