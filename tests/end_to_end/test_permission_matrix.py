"""Who may open what: every page and API endpoint × anonymous, annotator, another annotator,
reviewer and staff, with the expected allowed/refused outcome.

Test ids read ``<role>_<allowed|refused>_<METHOD>_<path>``. The API rows are checked against the
OpenAPI schema and all rows against the URLConf, so a new endpoint without a row fails
``test_matrix_covers_every_route``. A known access bug would be a strict xfail that names it (none left).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from annotations import services as annotation_services
from annotations.models import PreferencePair
from arena.models import Comparison
from evaluation.models import Evaluation
from training.models import TrainingRun

ROLES = ("anonymous", "annotator", "other_annotator", "reviewer", "staff")
ANYONE = frozenset(ROLES)
USERS = ANYONE - {"anonymous"}
OWNER = frozenset({"annotator", "reviewer", "staff"})  # the annotator's own rows; reviewers see everyone's
SELF = frozenset({"annotator"})  # acting on the annotator's own assignment
REVIEWERS = frozenset({"reviewer", "staff"})
STAFF = frozenset({"staff"})



@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {name} placeholders are filled from the world fixture
    allowed: frozenset
    body: dict = field(default_factory=dict)
    api: bool = True
    ok_statuses: tuple = ()  # statuses other than 2xx/3xx/400/409 that still mean "let in" (e.g. 503 on /health/)
    xfail_roles: tuple = ()
    reason: str = ""

    @property
    def slug(self) -> str:
        return f"{self.method}_{re.sub(r'[^A-Za-z0-9{}]+', '_', self.path).strip('_')}"


API = [
    Endpoint("GET", "/api/", USERS),
    Endpoint("GET", "/api/me/", USERS),
    Endpoint("GET", "/api/annotate/next/", USERS),
    Endpoint("GET", "/api/judgements/", USERS),
    Endpoint("POST", "/api/judgements/", SELF, {"assignment": "{open_assignment}", "candidate": "{open_candidate}"}),
    Endpoint("GET", "/api/judgements/{judgement}/", OWNER),
    Endpoint("GET", "/api/pairs/", REVIEWERS),
    Endpoint("GET", "/api/pairs/{pair}/", REVIEWERS),
    Endpoint("POST", "/api/pairs/{pair}/approve/", REVIEWERS),
    Endpoint("POST", "/api/pairs/{pair}/reject/", REVIEWERS),
    Endpoint("POST", "/api/pairs/{pair}/swap/", REVIEWERS),
    Endpoint("POST", "/api/pairs/{pair}/flag/", REVIEWERS, {"note": "check the grammar"}),
    Endpoint("POST", "/api/pairs/{pair}/unflag/", REVIEWERS),
    Endpoint("POST", "/api/pairs/{pair}/edit/", REVIEWERS, {"chosen_text": "please stop, that was rude"}),
    Endpoint("POST", "/api/pairs/bulk/", REVIEWERS, {"ids": ["{pair}"], "action": "flag"}),
    # The reviewer's own pair: only someone else may judge it (staff may: they own the data).
    *[
        Endpoint("POST", f"/api/pairs/{{own_pair}}/{verb}/", STAFF, body)
        for verb, body in (("approve", {}), ("reject", {}), ("swap", {}), ("edit", {"chosen_text": "please be kind"}))
    ],
    Endpoint("GET", "/api/prompts/", REVIEWERS),
    Endpoint("GET", "/api/prompts/{prompt}/", REVIEWERS),
    Endpoint("GET", "/api/versions/", STAFF),
    Endpoint("GET", "/api/versions/{version}/", STAFF),
    Endpoint("POST", "/api/versions/{version}/activate/", STAFF, {"reason": "matrix"}),
    Endpoint("POST", "/api/versions/{version}/evaluate/", STAFF),
    Endpoint("GET", "/api/training-runs/", STAFF),
    Endpoint("POST", "/api/training-runs/", STAFF, {"kind": "sft", "hyperparameters": {"max_steps": 1}}),
    Endpoint("GET", "/api/training-runs/{run}/", STAFF),
    Endpoint("POST", "/api/training-runs/{run}/cancel/", STAFF),
    Endpoint("GET", "/api/training-runs/first/", STAFF),
    Endpoint("GET", "/api/evaluations/judge/", REVIEWERS),
    Endpoint("POST", "/api/evaluations/judge/", STAFF),
    Endpoint("POST", "/api/training-runs/first/", STAFF),
    Endpoint("GET", "/api/evaluations/", REVIEWERS),
    Endpoint("POST", "/api/evaluations/", STAFF, {"version": "{version}", "sample_size": 2}),
    Endpoint("GET", "/api/evaluations/{evaluation}/", REVIEWERS),
    Endpoint("GET", "/api/evaluations/compare/?a={version}&b={version}", REVIEWERS),
    Endpoint("GET", "/api/quality/annotators/", REVIEWERS),
    Endpoint("GET", "/api/quality/versions/", REVIEWERS),
    Endpoint("GET", "/api/quality/gold/", REVIEWERS),
    Endpoint("POST", "/api/quality/gold/", STAFF, {"item": "{open_item}", "candidate": "{open_candidate}"}),
    Endpoint("GET", "/api/exports/preferences.jsonl", REVIEWERS),
    Endpoint("GET", "/api/exports/sft.jsonl", REVIEWERS),
    Endpoint("GET", "/api/exports/judgements.jsonl", REVIEWERS),
    Endpoint("GET", "/api/arena/next/", USERS),
    Endpoint("POST", "/api/arena/judgements/", USERS, {"assignment": 999999, "tie": True}, ok_statuses=(404,)),
    Endpoint("GET", "/api/arena/comparisons/", REVIEWERS),
    Endpoint("POST", "/api/arena/comparisons/", STAFF, {"name": "matrix", "versions": ["{version}"], "matches_wanted": 2}),
    Endpoint("GET", "/api/arena/comparisons/{comparison}/", REVIEWERS),
    Endpoint("POST", "/api/arena/comparisons/{comparison}/close/", STAFF),
    Endpoint("GET", "/api/arena/comparisons/{comparison}/results/", STAFF),  # open comparison: results stay hidden from non-staff (blind judging)
    Endpoint("POST", "/api/auth/token/", ANYONE, {"username": "ann", "password": "pw-for-tests-1"}),
    Endpoint("GET", "/api/schema/", ANYONE),
    Endpoint("GET", "/api/docs/", ANYONE),
]

PAGES = [
    Endpoint("GET", "/", USERS, api=False),
    Endpoint("GET", "/signup/", ANYONE, api=False),
    Endpoint("GET", "/annotate/", USERS, api=False),
    Endpoint("GET", "/review/", REVIEWERS, api=False),
    Endpoint("POST", "/review/bulk/", REVIEWERS, {"ids": "{pair}", "action": "flag"}, api=False),
    Endpoint("GET", "/review/{pair}/", REVIEWERS, api=False),
    Endpoint("GET", "/training/versions/", STAFF, api=False),
    Endpoint("POST", "/training/versions/{version}/activate/", STAFF, {"reason": "matrix"}, api=False),
    Endpoint("POST", "/training/versions/{version}/evaluate/", STAFF, api=False),
    Endpoint("POST", "/training/versions/judge/", STAFF, api=False),
    Endpoint("GET", "/training/runs/", STAFF, api=False),
    Endpoint("GET", "/training/runs/{run}/", STAFF, api=False),
    Endpoint("POST", "/training/runs/{run}/cancel/", STAFF, api=False),
    Endpoint("POST", "/training/runs/first/", STAFF, api=False),
    Endpoint("GET", "/arena/", USERS, api=False),
    Endpoint("GET", "/arena/comparisons/", REVIEWERS, api=False),
    Endpoint("GET", "/arena/comparisons/{comparison}/", STAFF, api=False),  # open comparison: results page is staff-only
    Endpoint("POST", "/arena/comparisons/{comparison}/close/", STAFF, api=False),
    Endpoint("GET", "/quality/", REVIEWERS, api=False),
    Endpoint("GET", "/quality/gold/", STAFF, api=False),
    Endpoint("GET", "/accounts/login/", ANYONE, api=False),
    Endpoint("POST", "/accounts/logout/", ANYONE, api=False),
    Endpoint("GET", "/accounts/password_change/", USERS, api=False),
    Endpoint("GET", "/accounts/password_change/done/", USERS, api=False),
    Endpoint("GET", "/accounts/password_reset/", ANYONE, api=False),
    Endpoint("GET", "/accounts/password_reset/done/", ANYONE, api=False),
    Endpoint("GET", "/accounts/reset/MQ/set-password/", ANYONE, api=False),
    Endpoint("GET", "/accounts/reset/done/", ANYONE, api=False),
    Endpoint("GET", "/health/", ANYONE, api=False, ok_statuses=(503,)),  # 503: no workers run in tests
    Endpoint("GET", "/metrics", STAFF, api=False),
    Endpoint("GET", "/admin/", STAFF, api=False),
    Endpoint("GET", "/admin/rq/", STAFF, api=False),
    Endpoint("GET", "/admin/rq/stats.json", STAFF, api=False),
    Endpoint("GET", "/admin/rq/metrics/", STAFF, api=False),
    Endpoint("GET", "/admin/rq/queues/0/", STAFF, api=False),
    Endpoint("GET", "/admin/rq/workers/0/", STAFF, api=False),
]
ENDPOINTS = API + PAGES


def cases():
    for endpoint in ENDPOINTS:
        for role in ROLES:
            allowed = role in endpoint.allowed
            marks = []
            if role in endpoint.xfail_roles:
                marks.append(pytest.mark.xfail(strict=True, reason=endpoint.reason))
            yield pytest.param(role, allowed, endpoint, id=f"{role}_{'allowed' if allowed else 'refused'}_{endpoint.slug}", marks=marks)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hundreds of tests each make four users: skip the slow production hasher here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(make_user, filled_pool):
    """Users in every role and one row of everything an endpoint can name."""
    users = {
        "annotator": make_user("ann"),
        "other_annotator": make_user("ann2"),
        "reviewer": make_user("rev", "reviewer"),
        "staff": make_user("boss", "admin"),
    }
    judged = annotation_services.next_assignment(user=users["annotator"])
    judgement, _ = annotation_services.submit_judgement(
        user=users["annotator"], assignment_id=judged.pk, candidate_id=judged.candidate_order[0]
    )
    shown_to_reviewer = annotation_services.next_assignment(user=users["reviewer"])
    annotation_services.submit_judgement(
        user=users["reviewer"], assignment_id=shown_to_reviewer.pk, candidate_id=shown_to_reviewer.candidate_order[0]
    )
    open_assignment = annotation_services.next_assignment(user=users["annotator"])
    comparison = Comparison.objects.create(name="a vs b", created_by=users["staff"], matches_wanted=2)
    comparison.versions.add(filled_pool)
    ids = {
        "judgement": judgement.pk,
        "pair": PreferencePair.objects.filter(judgement=judgement).first().pk,
        "own_pair": PreferencePair.objects.filter(judgement__user=users["reviewer"]).first().pk,
        "open_assignment": open_assignment.pk,
        "open_candidate": open_assignment.candidate_order[0],
        "open_item": open_assignment.item_id,
        "prompt": judgement.item.prompt_id,
        "version": filled_pool.pk,
        "run": TrainingRun.objects.create(kind="sft", parent=filled_pool, output_directory="sft-matrix").pk,
        "evaluation": Evaluation.objects.create(version=filled_pool, sample_size=2).pk,
        "comparison": comparison.pk,
    }
    return users, ids


def fill(value, ids):
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        return ids[whole.group(1)] if whole else value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def refused(response) -> bool:
    """401/403, or a redirect to a login page asking to come back (logout's plain redirect is no refusal)."""
    if response.status_code in (401, 403):
        return True
    location = response.get("Location", "") if response.status_code == 302 else ""
    return ("/accounts/login/" in location or "/admin/login/" in location) and "next=" in location


def let_in(response, endpoint: Endpoint) -> bool:
    """Past the access check: a success, a redirect elsewhere or a validation/state refusal of the request."""
    return not refused(response) and (response.status_code < 404 or response.status_code in (409, *endpoint.ok_statuses))


@pytest.mark.parametrize("role, allowed, endpoint", list(cases()))
def test_access(world, role, allowed, endpoint):
    users, ids = world
    client = APIClient()
    if role != "anonymous":
        client.force_login(users[role])
    path = fill(endpoint.path, ids)
    body = fill(endpoint.body, ids)
    if endpoint.method == "GET":
        response = client.get(path)
    elif endpoint.api:
        response = client.post(path, body, format="json")
    else:
        response = client.post(path, body)
    if allowed:
        assert let_in(response, endpoint), f"{role} was refused {endpoint.method} {path}: {response.status_code}"
    else:
        # Someone else's judgements and assignments are hidden (404) rather than forbidden.
        hidden = role != "anonymous" and endpoint.allowed in (OWNER, SELF) and response.status_code == 404
        assert refused(response) or hidden, f"{role} got {response.status_code} on {endpoint.method} {path}"


def url_routes(patterns=None, prefix=""):
    """Every route in the URLConf, without DRF's format-suffix twins and Django admin's model pages."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            if "(?P<format>" in route or "<drf_format_suffix:format>" in route:
                continue
            yield route


# Django's admin site (every page checks is_staff itself; its index is in the matrix) and
# django-rq's job/scheduler pages (each decorated staff_member_required; queues and workers are in)
# and its stats.json-by-token twin (RQ_API_TOKEN is not set).
NOT_IN_MATRIX = re.compile(r"^admin/(?!rq/)|^admin/rq/(queues/.+/|queues/(confirm-action|actions)/|workers/.+/.+|schedulers/|cron-schedulers/|stats.json/\(\?P<token>)")


def test_matrix_covers_every_route(db):
    covered = {resolve(re.sub(r"\{\w+\}", "1", e.path.split("?")[0])).route.replace("^", "") for e in ENDPOINTS}
    routes = {route.replace("^", "") for route in url_routes()}
    missing = {route for route in routes if route not in covered and not NOT_IN_MATRIX.match(route)}
    assert not missing, f"add these routes to the permission matrix: {sorted(missing)}"


def test_matrix_covers_every_operation_in_the_openapi_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {(method.upper(), path) for path, operations in schema["paths"].items() for method in operations}
    in_matrix = {(e.method, re.sub(r"\{\w+\}", "{id}", e.path.split("?")[0])) for e in API}
    assert not documented - in_matrix, f"add these operations to the permission matrix: {sorted(documented - in_matrix)}"
