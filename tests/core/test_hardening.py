"""Hardening: production settings, throttling and tokens, access, arena blindness, request limits,
staff inputs, admin edits of prompts, expired assignments, 4xx logging and the OpenAPI schema."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k7Gq2v9XfP1mZ8rT4wY6bN3cJ5hL0sD2aQ9eR7uI1oK4pV8xC6zB3nM5",
    "ALLOWED_HOSTS": "detox.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://detox.example.org",
}


def run_django(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run manage.py in a clean environment (only what a deployment would set)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DETOX_VAR_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    if "DATABASE_URL" in os.environ:
        base["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


# --- 1. production settings -------------------------------------------------------------------------


def test_check_deploy_passes_with_the_documented_production_env(tmp_path):
    result = run_django(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run_django(["check"], env, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()


SHOW_SETTINGS = "from django.conf import settings as s; print(s.DEBUG, s.SECRET_KEY, s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"


def test_local_runs_generate_a_private_secret_key_once_and_debug_is_off(tmp_path):
    first = run_django(["shell", "-c", SHOW_SETTINGS], {}, tmp_path)
    assert first.returncode == 0, first.stderr
    debug, key, secure_cookie, redirect = first.stdout.splitlines()[-1].split()
    assert (debug, secure_cookie, redirect) == ("False", "False", "False")
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == key and len(key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = run_django(["shell", "-c", SHOW_SETTINGS], {"DEBUG": "1"}, tmp_path)
    assert second.stdout.splitlines()[-1].split()[:2] == ["True", key]  # same key on the next start; DEBUG=1 turns debug on


def test_static_files_are_served_with_debug_off(settings):
    assert settings.DEBUG is False
    response = Client().get("/static/js/judge.js")
    assert response.status_code == 200


# --- 2. throttled sign-in, expiring tokens -----------------------------------------------------------


def test_token_endpoint_is_throttled_with_a_clear_message(settings, annotator):
    settings.LOGIN_THROTTLE_RATE = "3/minute"
    client = Client()
    for _ in range(3):
        assert client.post("/api/auth/token/", {"username": "ann", "password": "wrong"}).status_code == 400
    refused = client.post("/api/auth/token/", {"username": "ann", "password": "pw-for-tests-1"})
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many sign-in attempts from your address; try again in")


def test_login_page_shares_the_limit_and_never_checks_the_password_past_it(settings, annotator):
    settings.LOGIN_THROTTLE_RATE = "3/minute"
    client = Client()
    for _ in range(2):
        assert client.post("/api/auth/token/", {"username": "ann", "password": "wrong"}).status_code == 400
    assert client.post("/accounts/login/", {"username": "ann", "password": "wrong"}).status_code == 200
    refused = client.post("/accounts/login/", {"username": "ann", "password": "pw-for-tests-1"})
    assert refused.status_code == 429
    assert "Too many sign-in attempts from your address" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/accounts/login/").status_code == 200  # showing the page is not an attempt


def test_expired_token_is_refused_and_a_new_one_issued(settings, annotator):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    token = Client().post("/api/auth/token/", {"username": "ann", "password": "pw-for-tests-1"}).json()["token"]
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(days=settings.API_TOKEN_TTL_DAYS + 1))
    expired = Client(HTTP_AUTHORIZATION=f"Token {token}").get("/api/me/")
    assert expired.status_code == 401 and expired.json()["detail"] == "Token expired; request a new one."
    fresh = Client().post("/api/auth/token/", {"username": "ann", "password": "pw-for-tests-1"}).json()["token"]
    assert fresh != token
    assert Client(HTTP_AUTHORIZATION=f"Token {fresh}").get("/api/me/").status_code == 200


def test_changing_the_password_revokes_api_tokens(annotator):
    token = Client().post("/api/auth/token/", {"username": "ann", "password": "pw-for-tests-1"}).json()["token"]
    web = Client()
    web.force_login(annotator)
    changed = web.post(
        "/accounts/password_change/",
        {"old_password": "pw-for-tests-1", "new_password1": "An0ther-long-pass", "new_password2": "An0ther-long-pass"},
    )
    assert changed.status_code == 302
    assert Client(HTTP_AUTHORIZATION=f"Token {token}").get("/api/me/").status_code == 401


# --- 3. access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role, status", [("annotator", 403), ("reviewer", 403), ("admin", 200)])
def test_only_staff_read_model_versions(api, make_user, tiny_version, role, status):
    client = api(make_user("someone", role))
    assert client.get("/api/versions/").status_code == status
    assert client.get(f"/api/versions/{tiny_version.pk}/").status_code == status


@pytest.fixture
def own_pair(make_user, filled_pool):
    """A pending pair from a judgement by the reviewer ``rev`` themself."""
    from annotations import services

    reviewer = make_user("rev", "reviewer")
    assignment = services.next_assignment(user=reviewer)
    judgement, _ = services.submit_judgement(
        user=reviewer, assignment_id=assignment.pk, candidate_id=assignment.candidate_order[0]
    )
    return reviewer, judgement.pairs.first()


@pytest.mark.parametrize(
    "action, body",
    [("approve", None), ("reject", None), ("swap", None), ("edit", {"chosen_text": "Please be nicer."})],
)
def test_reviewer_cannot_review_own_pairs(api, own_pair, action, body):
    from annotations.models import PreferencePair, ReviewEvent

    reviewer, pair = own_pair
    response = api(reviewer).post(f"/api/pairs/{pair.pk}/{action}/", body, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"You cannot {action} your own pairs ({pair.pk}); another reviewer must review them."
    )
    bulk = api(reviewer).post("/api/pairs/bulk/", {"ids": [pair.pk], "action": "approve"}, format="json")
    assert bulk.status_code == 403
    assert PreferencePair.objects.get(pk=pair.pk).status == "pending" and not ReviewEvent.objects.exists()


def test_staff_may_review_their_own_pairs(api, make_user, filled_pool):
    from annotations import services

    boss = make_user("boss", "admin")
    assignment = services.next_assignment(user=boss)
    judgement, _ = services.submit_judgement(user=boss, assignment_id=assignment.pk, candidate_id=assignment.candidate_order[0])
    pair = judgement.pairs.first()
    assert api(boss).post(f"/api/pairs/{pair.pk}/approve/").json()["status"] == "approved"


# --- 4. the annotate payload does not make gold items recognisable ------------------------------------


def test_annotate_payload_serves_only_assignment_and_candidate_ids(api, annotator, filled_pool):
    shown = api(annotator).get("/api/annotate/next/").json()["assignment"]
    assert set(shown) == {"id", "prompt", "candidates", "shown_at"}
    assert all(set(candidate) == {"id", "text", "position"} for candidate in shown["candidates"])
    page = Client()
    page.force_login(annotator)
    assert "model-version" not in page.get("/annotate/").content.decode()


# --- 8. expired reservations ---------------------------------------------------------------------------


def _expire(assignment, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from annotations.models import Assignment

    shown_at = timezone.now() - timedelta(minutes=settings.ASSIGNMENT_TTL_MINUTES + 1)
    Assignment.objects.filter(pk=assignment.pk).update(shown_at=shown_at)


def test_judgement_on_an_expired_item_given_to_someone_else_is_refused(api, make_user, filled_pool, settings):
    from annotations import services
    from annotations.models import Judgement

    slow, quick = make_user("slow"), make_user("quick")
    first = services.next_assignment(user=slow)
    _expire(first, settings)
    services.assign(user=quick, item=first.item)  # the pool handed the freed slot on
    response = api(slow).post(
        "/api/judgements/", {"assignment": first.pk, "candidate": first.candidate_order[0]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "This item expired and was given to another annotator; here is a new one."
    assert api(slow).get("/api/annotate/next/").json()["assignment"]["id"] != first.pk
    taken = quick.assignments.get()
    services.submit_judgement(user=quick, assignment_id=taken.pk, candidate_id=taken.candidate_order[0])
    assert Judgement.objects.filter(item=first.item).count() == first.item.judgements_needed == 1


def test_judgement_on_an_expired_item_nobody_took_is_still_saved(api, annotator, filled_pool, settings):
    from annotations import services

    first = services.next_assignment(user=annotator)
    _expire(first, settings)
    response = api(annotator).post(
        "/api/judgements/", {"assignment": first.pk, "candidate": first.candidate_order[0]}, format="json"
    )
    assert response.status_code == 201


# --- 5. request limits and pagination -----------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_oversized_request_bodies_get_413(api, annotator, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"assignment": 1, "own_rewrite": "%s"}' % ("x" * 2000) if "json" in content_type else "own_rewrite=" + "x" * 2000
    response = api(annotator).post("/api/judgements/", body, content_type=content_type)
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than the limit of 1000 bytes; send less data."
    token = Client().post("/api/auth/token/", '{"username": "%s"}' % ("x" * 2000), content_type="application/json")
    assert token.status_code == 413


def test_quality_reports_and_gold_list_are_paginated(api, reviewer, make_user, filled_pool, monkeypatch):
    from rest_framework.pagination import PageNumberPagination

    from annotations import services

    monkeypatch.setattr(PageNumberPagination, "page_size", 2)
    for n in range(3):
        user = make_user(f"worker{n}")
        assignment = services.next_assignment(user=user)
        services.submit_judgement(user=user, assignment_id=assignment.pk, candidate_id=assignment.candidate_order[0])
    client = api(reviewer)
    first = client.get("/api/quality/annotators/").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"] and "overall" in first
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["previous"]
    assert set(client.get("/api/quality/versions/").json()) >= {"count", "next", "previous", "overall", "results"}
    assert set(client.get("/api/quality/gold/").json()) == {"count", "next", "previous", "results"}


# --- 9. one log line per refused request --------------------------------------------------------------


@pytest.mark.parametrize(
    "path, status",
    [("/api/versions/", 403), ("/review/", 403), ("/no-such-page/", 404), ("/api/pairs/999999/", 403)],
)
def test_refused_requests_log_one_line_without_traceback(caplog, annotator, path, status):
    import logging

    client = Client()
    client.force_login(annotator)
    with caplog.at_level(logging.INFO, logger="django.request"):
        assert client.get(path).status_code == status
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].getMessage() == f"GET {path} {status} user=ann"
    assert records[0].exc_info is None


def test_anonymous_and_throttled_requests_log_one_line(caplog, settings, db):
    import logging

    settings.LOGIN_THROTTLE_RATE = "1/minute"
    client = Client()
    with caplog.at_level(logging.INFO, logger="django.request"):
        assert client.get("/api/me/").status_code == 401
        client.post("/api/auth/token/", {"username": "x", "password": "y"})
        assert client.post("/api/auth/token/", {"username": "x", "password": "y"}).status_code == 429
    lines = [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert lines == [
        "GET /api/me/ 401 user=anonymous",
        "POST /api/auth/token/ 400 user=anonymous",
        "POST /api/auth/token/ 429 user=anonymous",
    ]


def test_server_errors_keep_their_traceback():
    import logging

    from core.request_log import OneLineClientErrors

    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "boom", (), (ValueError, ValueError("x"), None))
    record.status_code, record.request = 500, object()
    assert OneLineClientErrors().filter(record) and record.exc_info is not None and record.getMessage() == "boom"


# --- 6. staff inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["a=x&b={pk}", "a={pk}", "a=999999&b=999999"])
def test_versions_page_answers_400_with_a_form_error_for_bad_ids(staff, tiny_version, query):
    client = Client()
    client.force_login(staff)
    response = client.get("/training/versions/?" + query.format(pk=tiny_version.pk))
    assert response.status_code == 400
    assert "Choose two versions from the lists" in response.content.decode()
    assert client.get(f"/training/versions/?a={tiny_version.pk}&b={tiny_version.pk}").status_code == 200


@pytest.mark.parametrize(
    "hyperparameters, message",
    [
        ({"use_lora": "false"}, "use_lora must be true or false, got 'false'"),
        ({"epochs": 1000}, "epochs must be at most 100, got 1000"),
        ({"batch_size": 100000}, "batch_size must be at most 1024, got 100000"),
        ({"max_steps": 10**7}, "max_steps must be at most 1000000, got 10000000"),
        ({"learning_rate": 0.5}, "learning_rate must be at most 0.01, got 0.5"),
        ({"max_length": 100000}, "max_length must be at most 4096, got 100000"),
        ({"subset_size": 10**8}, "subset_size must be at most 10000000, got 100000000"),
        ({"group_by_length": "no"}, "group_by_length must be true or false, got 'no'"),
        ({"seed": 2**32}, "seed must be between 0 and 2**32 - 1, got 4294967296"),
        ({"seed": -1}, "seed must be between 0 and 2**32 - 1, got -1"),
    ],
)
def test_bad_hyperparameters_are_refused_when_the_run_is_started(api, staff, tiny_version, prompts, hyperparameters, message):
    from training.models import TrainingRun

    response = api(staff).post("/api/training-runs/", {"kind": "sft", "hyperparameters": hyperparameters}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == f"Invalid training settings: {message}"
    assert not TrainingRun.objects.exists()


def test_dpo_beta_has_an_upper_bound(api, staff, tiny_version, prompts):
    response = api(staff).post("/api/training-runs/", {"kind": "dpo", "hyperparameters": {"beta": 50}}, format="json")
    assert response.status_code == 400 and response.json()["detail"] == "Invalid training settings: beta must be at most 10.0, got 50"


def test_run_form_refuses_a_huge_seed(staff, tiny_version, prompts):
    from training.models import TrainingRun

    client = Client()
    client.force_login(staff)
    response = client.post(
        "/training/runs/",
        {"kind": "sft", "parent": tiny_version.pk, "include_references": "on", "seed": str(2**40)},
    )
    assert "seed must be between 0 and 2**32 - 1" in response.content.decode()
    assert not TrainingRun.objects.exists()


# --- 7. prompts in the admin ----------------------------------------------------------------------------


def test_admin_cannot_change_a_prompts_text_or_held_out_side(staff, prompts):
    from annotations.models import Prompt, text_hash

    prompt = prompts[0]
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/annotations/prompt/{prompt.pk}/change/").content.decode()
    assert 'name="text"' not in page and 'name="is_heldout"' not in page
    response = client.post(
        f"/admin/annotations/prompt/{prompt.pk}/change/",
        {"text": "a completely different sentence", "is_heldout": "on", "source": "edited", "references": '["ref"]'},
    )
    assert response.status_code == 302
    saved = Prompt.objects.get(pk=prompt.pk)
    assert (saved.text, saved.is_heldout, saved.source) == (prompt.text, False, "edited")
    assert saved.text_hash == text_hash(saved.text)


def test_admin_adds_a_prompt_with_hash_and_held_out_side_from_its_text(staff, settings, db):
    from annotations.models import Prompt, is_heldout_hash, text_hash

    settings.HELDOUT_PERCENT = 50
    client = Client()
    client.force_login(staff)
    for n in range(6):
        text = f"you  absolute fool {n}"
        response = client.post("/admin/annotations/prompt/add/", {"text": text, "source": "admin", "references": "[]", "is_heldout": "on"})
        assert response.status_code == 302, response.content.decode()[:2000]
        prompt = Prompt.objects.get(source="admin", text=f"you absolute fool {n}")
        assert prompt.text_hash == text_hash(prompt.text)
        assert prompt.is_heldout == is_heldout_hash(prompt.text_hash, 50)
    duplicate = client.post("/admin/annotations/prompt/add/", {"text": "You absolute fool 0", "source": "admin", "references": "[]"})
    assert duplicate.status_code == 200 and "This sentence is already a prompt." in duplicate.content.decode()


# --- 10. OpenAPI schema ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi_schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize(
    "component, field",
    [
        ("Judgement", "chosen_text"),
        ("Judgement", "model_version"),
        ("ScoredVersion", "parent"),
        ("ScoredVersion", "family"),
        ("PreferencePair", "model_version"),
        ("PreferencePair", "reviewed_by"),
        ("PreferencePair", "chosen_candidate"),
        ("TrainingRun", "result_version"),
        ("TrainingRun", "created_by"),
        ("Comparison", "created_by"),
    ],
)
def test_fields_that_can_be_null_are_declared_nullable(openapi_schema, component, field):
    assert openapi_schema["components"]["schemas"][component]["properties"][field].get("nullable") is True


@pytest.mark.parametrize(
    "path, method, codes",
    [
        ("/api/judgements/", "post", {"201", "200", "400", "401", "403", "413"}),
        ("/api/pairs/{id}/approve/", "post", {"200", "400", "401", "403", "404"}),
        ("/api/versions/{id}/", "get", {"200", "401", "403", "404"}),
        ("/api/auth/token/", "post", {"200", "400", "429"}),
        ("/api/quality/annotators/", "get", {"200", "401", "403", "404"}),
        ("/api/arena/next/", "get", {"200", "400", "401", "403", "404"}),
        ("/api/exports/preferences.jsonl", "get", {"200", "400", "401", "403"}),
    ],
)
def test_error_responses_are_documented(openapi_schema, path, method, codes):
    responses = openapi_schema["paths"][path][method]["responses"]
    assert codes <= set(responses)
    if "403" in codes:
        assert responses["403"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
