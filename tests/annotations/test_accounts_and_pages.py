"""Accounts, roles and the web pages as a browser sees them (CSRF stays on)."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_sign_up_logs_in_and_opens_annotation():
    client = Client()
    response = client.post(
        "/signup/", {"username": "newbie", "email": "", "password1": "Sup3r-secret-pw", "password2": "Sup3r-secret-pw"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/annotate/"
    assert response.context["user"].username == "newbie"
    assert b"Saved choices" in response.content


def test_sign_up_form_errors_are_shown():
    response = Client().post("/signup/", {"username": "x", "password1": "a", "password2": "b"})
    assert response.status_code == 200
    assert b"didn" in response.content or b"match" in response.content


def test_login_logout_and_change_password(annotator):
    client = Client()
    assert client.post("/accounts/login/", {"username": "ann", "password": "pw-for-tests-1"}).status_code == 302
    assert client.get("/").status_code == 200
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "pw-for-tests-1", "new_password1": "An0ther-long-pw", "new_password2": "An0ther-long-pw"},
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302
    assert Client().login(username="ann", password="An0ther-long-pw")


def test_pages_need_login():
    for url in ("/", "/annotate/", "/review/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role, review_status, admin_status", [("annotator", 403, 302), ("reviewer", 200, 302), ("admin", 200, 200)])
def test_role_matrix_for_review_and_admin(make_user, role, review_status, admin_status):
    client = Client()
    client.force_login(make_user(f"u-{role}", role))
    assert client.get("/review/").status_code == review_status
    assert client.get("/admin/").status_code == admin_status


def test_csrf_is_enforced_on_web_pages_and_session_api(annotator, filled_pool):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post("/signup/", {}).status_code == 403
    shown = client.get("/api/annotate/next/").json()["assignment"]
    response = client.post(
        "/api/judgements/", {"assignment": shown["id"], "candidate": shown["candidates"][0]["id"]}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_annotate_page_has_keys_blur_toggle_and_skip_reasons(annotator):
    client = Client()
    client.force_login(annotator)
    html = client.get("/annotate/").content.decode()
    assert 'id="blur-toggle"' in html and "keys 1–" in html
    assert "None of these is acceptable" in html
    assert "Cannot be rewritten politely" in html


def test_home_shows_saved_count_and_active_version(annotator, tiny_version):
    client = Client()
    client.force_login(annotator)
    html = client.get("/").content.decode()
    assert "annotator" in html and "tiny" in html


def test_token_auth_works_for_the_api(api, annotator, filled_pool):
    response = Client().post("/api/auth/token/", {"username": "ann", "password": "pw-for-tests-1"})
    token = response.json()["token"]
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/me/").json() == {"username": "ann", "role": "annotator", "saved_choices": 0, "skips": 0}


def test_openapi_schema_and_offline_swagger_ui(annotator):
    client = Client()
    client.force_login(annotator)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/annotate/next/", "/api/judgements/", "/api/pairs/{id}/approve/", "/api/pairs/bulk/", "/api/versions/{id}/activate/"):
        assert path in paths
    docs = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/" in docs and "cdn" not in docs.lower()


def test_openapi_schema_generates_without_warnings(tmp_path):
    # A warning means a client generator would see a vague type or an auto-named enum.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


def test_django_rq_dashboard_is_for_staff_only(make_user):
    client = Client()
    client.force_login(make_user("plain"))
    assert client.get("/admin/rq/").status_code == 302
    client.force_login(make_user("chief", "admin"))
    assert client.get("/admin/rq/").status_code == 200
