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

ROOT = Path(__file__).resolve().parents[1]
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
    response = Client().get("/static/js/annotate.js")
    assert response.status_code == 200
