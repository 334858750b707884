"""Property-based API tests with Schemathesis, in-process over WSGI on the real database and Redis.

Every operation of the OpenAPI schema gets a few generated requests per role (token auth). The
no-5xx check is strict; response schema conformance (nullable fields, documented error answers)
is checked for staff on every operation. Bounded (fuzzing phase only,
3 examples per operation, a 5 s deadline per example): the module runs in well under 90 seconds.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from annotations import services as annotation_services

pytestmark = pytest.mark.django_db

# Fuzzing only: the coverage phase would send dozens of boundary requests per operation.
BOUNDED_RUN = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}, "generation": {"mode": "all"}}
)
BOUNDED = settings(
    max_examples=3,
    deadline=timedelta(seconds=5),
    database=None,  # no .hypothesis/ directory in the checkout
    derandomize=True,  # the same requests every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Requests go straight to the WSGI app: like Django's test client, keep the request signals from
    closing the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def served_schema():
    """The OpenAPI document /api/schema/ serves (generated the same way), called in-process over WSGI."""
    loaded = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True), config=BOUNDED_RUN)
    loaded.app = get_wsgi_application()
    return loaded


def token_headers(role, make_user) -> dict[str, str]:
    """A token for one role, after an annotator judged an item (so pairs and judgements exist)."""
    annotator = make_user("ann")
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    user = annotator if role == "annotator" else make_user(f"fuzz-{role}", role)
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def annotator_token(make_user, filled_pool):
    return token_headers("annotator", make_user)


@pytest.fixture
def reviewer_token(make_user, filled_pool):
    return token_headers("reviewer", make_user)


@pytest.fixture
def staff_token(make_user, filled_pool):
    return token_headers("admin", make_user)


schema = served_schema()


class _ServerError(Exception):
    def __init__(self, response):
        self.response = response


def call_in_own_transaction(case, headers):
    """Call the operation the way production runs a request, in its own transaction: a request that
    breaks the transaction (a database error behind a 500) is rolled back and cannot poison the next."""
    try:
        with transaction.atomic():
            response = case.call(headers=headers)
            if response.status_code >= 500:
                raise _ServerError(response)
    except _ServerError as failed:
        response = failed.response
    return response


def assert_no_server_error(case, headers):
    case.validate_response(call_in_own_transaction(case, headers), checks=[not_a_server_error])


@schema.parametrize()
@BOUNDED
def test_annotator_gets_no_server_errors(case, annotator_token):
    assert_no_server_error(case, annotator_token)


@schema.parametrize()
@BOUNDED
def test_reviewer_gets_no_server_errors(case, reviewer_token):
    assert_no_server_error(case, reviewer_token)


@schema.parametrize()
@BOUNDED
def test_staff_gets_no_server_errors(case, staff_token):
    assert_no_server_error(case, staff_token)


@pytest.mark.parametrize(
    "path",
    ["/api/pairs/", "/api/judgements/", "/api/exports/preferences.jsonl", "/api/exports/judgements.jsonl"],
)
def test_datetime_filters_with_extreme_offsets_are_not_server_errors(api, reviewer, path):
    """Found by the fuzzer: PostgreSQL refused ISO offsets past ±15:59 and the API answered 500."""
    client = api(reviewer)
    assert client.get(path, {"created_after": "4383-05-19T07:09:20-20:05"}).status_code == 200
    assert client.get(path, {"created_after": "0001-01-01T00:00:00+23:00"}).status_code == 400


@schema.parametrize()
@BOUNDED
def test_staff_responses_match_the_schema(case, staff_token):
    case.validate_response(call_in_own_transaction(case, staff_token), checks=[response_schema_conformance])
