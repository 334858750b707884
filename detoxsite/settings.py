"""Detox Studio settings: every knob comes from the environment, with defaults that make a fresh
clone work offline (SQLite file, local Redis, the bundled model, a model store under ``var/``).

``DJANGO_ENV=production`` requires ``SECRET_KEY`` and turns on HTTPS-only cookies, HSTS and the SSL
redirect (each can still be set on its own); ``DEBUG`` is off unless ``DEBUG=1`` is set."""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DETOX_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [value.strip() for value in os.environ.get(name, default).split(",") if value.strip()]


def local_secret_key(path: Path) -> str:
    """The key generated once for this checkout (mode 0600), so sessions survive restarts locally."""
    from django.core.management.utils import get_random_secret_key

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(get_random_secret_key())
    return path.read_text().strip()


DJANGO_ENV = os.environ.get("DJANGO_ENV", "development")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: DJANGO_ENV=production needs a long random SECRET_KEY in the environment "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")  # e.g. https://detox.example.org

# HTTPS: on by default in production, each switch overridable. Behind a TLS-terminating proxy that
# sets (and overwrites) X-Forwarded-Proto; set SECURE_PROXY_SSL_HEADER= (empty) if there is none.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO" if PRODUCTION else "")
SECURE_PROXY_SSL_HEADER = (_proxy_header, "https") if _proxy_header else None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "django_rq",
    "annotations",
    "training",
    "arena",
    "evaluation",
    "quality",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "detoxsite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.roles",
            ],
        },
    },
]
WSGI_APPLICATION = "detoxsite.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server and worker write concurrently: wait for the lock instead of failing at once.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # IMMEDIATE: a write transaction takes the lock up front, so concurrent writers wait (timeout)
    # instead of failing with "database is locked" when upgrading a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
    # A file, not memory, so worker subprocesses in tests see the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "core.auth.RevokeTokensOnPasswordChange"},  # not a rule: deletes API tokens on a new password
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Jobs -----------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Shared by every web process (login throttling must count across gunicorn workers).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": "detox-cache",
    }
}
RQ_QUEUES = {
    "generation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "training": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600},
    "evaluation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
# core.queues.enqueue_on_commit is the one place that defers enqueues to the commit (and records a
# failure on the job row), so django-rq enqueues at once when asked.
RQ = {"COMMIT_MODE": "auto"}
# Tests run jobs through a real burst worker; this switch lets them skip enqueue-on-demand refills.
DETOX_AUTO_REFILL = env_bool("DETOX_AUTO_REFILL", True)

# --- Models ---------------------------------------------------------------------------------------
MODEL_STORE = Path(os.environ.get("MODEL_STORE", VAR_DIR / "models"))
BASE_MODEL = os.environ.get("BASE_MODEL", "bundled")  # "bundled", a .gguf path, a local dir or a hub id

# --- Annotation -----------------------------------------------------------------------------------
CANDIDATES_PER_ITEM = env_int("CANDIDATES_PER_ITEM", 3)
SAMPLING_TEMPERATURE = float(os.environ.get("SAMPLING_TEMPERATURE", 0.9))
SAMPLING_TOP_P = float(os.environ.get("SAMPLING_TOP_P", 0.95))
MAX_NEW_TOKENS = env_int("MAX_NEW_TOKENS", 48)
POOL_TARGET = env_int("POOL_TARGET", 64)  # ready items kept ahead for the active version (50 annotators judge ~12/s)
# Prompts sampled in one batched call: 32 x 3 rows supplied 7.2 items/s, 16 x 3 rows 4.9-5.7, 8 x 3 rows 3.7 (bench/RESULTS.md).
POOL_BATCH = env_int("POOL_BATCH", 32)
# Refill jobs that may run at once, one per generation worker (processes here, or hosts sharing Redis).
GENERATION_WORKERS = env_int("GENERATION_WORKERS", 1)
ANNOTATION_OVERLAP = env_int("ANNOTATION_OVERLAP", 1)  # judgements an item needs before it leaves the pool
ASSIGNMENT_TTL_MINUTES = env_int("ASSIGNMENT_TTL_MINUTES", 30)
# Long-polled /api/annotate/next/?wait=N and /api/arena/next/?wait=N: each waiting request holds a
# gunicorn thread, so at most NEXT_ITEM_MAX_WAITERS per web process wait, both endpoints together (the
# rest answer at once); keep it below --threads so submits always find a free thread. A waiter re-checks
# every NEXT_ITEM_RECHECK_SECONDS even without a signal (an expired reservation can free an item).
NEXT_ITEM_MAX_WAIT_SECONDS = 25
NEXT_ITEM_MAX_WAITERS = env_int("NEXT_ITEM_MAX_WAITERS", 4)
NEXT_ITEM_RECHECK_SECONDS = 5
GOLD_RATE = float(os.environ.get("GOLD_RATE", 0.1))  # share of served items that are gold (quality control)
# Which ready item an annotator gets next: "random"; "uncertain" (disagreeing judgements, then most
# different candidates, first); "failures" (prompts the model echoed while sampling, then "uncertain").
POOL_ORDERS = ("random", "uncertain", "failures")
POOL_ORDER = env_choice("POOL_ORDER", "random", POOL_ORDERS)
HELDOUT_PERCENT = env_int("HELDOUT_PERCENT", 5)
MAX_REWRITE_CHARS = env_int("MAX_REWRITE_CHARS", 1000)

# --- Quality control (the reviewer dashboard flags annotators past these limits) -------------------
QUALITY_MIN_GOLD_ACCURACY = float(os.environ.get("QUALITY_MIN_GOLD_ACCURACY", 0.6))
QUALITY_MIN_SECONDS_PER_ITEM = float(os.environ.get("QUALITY_MIN_SECONDS_PER_ITEM", 2.0))  # median; faster is implausible
QUALITY_MIN_ANSWERS = env_int("QUALITY_MIN_ANSWERS", 3)  # answers (gold ones for accuracy) before anyone is flagged
QUALITY_POSITION_BIAS_P = float(os.environ.get("QUALITY_POSITION_BIAS_P", 0.001))  # chi-square p below: position bias

# --- API ------------------------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)  # bytes of a request body
REST_FRAMEWORK = {
    # Token first: an anonymous API request gets 401 with ``WWW-Authenticate: Token`` (not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_THROTTLE_RATE", "10/minute")},
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",  # adds 413 for bodies past DATA_UPLOAD_MAX_MEMORY_SIZE
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",  # adds the 400/401/403/404/413/429 answers
}
# Sign-in attempts per client address, for the token endpoint and the login page together.
LOGIN_THROTTLE_RATE = REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 30)
SPECTACULAR_SETTINGS = {
    "TITLE": "Detox Studio API",
    "DESCRIPTION": "Annotate, review and train text-detoxification models.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a "kind" or "status" field; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "AnnotationItemKindEnum": "annotations.models.AnnotationItem.Kind",
        "JudgementKindEnum": "annotations.models.Judgement.Kind",
        "PairStatusEnum": "annotations.models.PreferencePair.Status",
        "ModelVersionKindEnum": "training.models.ModelVersion.Kind",
        "TrainingRunKindEnum": "training.models.TrainingRun.Kind",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "EvaluationStatusEnum": "evaluation.models.Evaluation.Status",
        "ComparisonStatusEnum": "arena.models.Comparison.Status",
        "NextItemStatusEnum": ["ready", "generating", "exhausted"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A refused request (4xx) is one line (method, path, status, user), not a traceback.
    "filters": {"one_line_4xx": {"()": "core.request_log.OneLineClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["one_line_4xx"]}},
    "loggers": {
        "django.request": {"filters": ["one_line_4xx"]},
        "django.security": {"filters": ["one_line_4xx"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
WHITENOISE_USE_FINDERS = True  # serve app and sidecar static files without a collect step in dev

# --- Training -------------------------------------------------------------------------------------
TRAINING_JOB_TIMEOUT = env_int("TRAINING_JOB_TIMEOUT", 6 * 3600)
# Seconds without a heartbeat before a running job (training, evaluation, arena) counts as dead.
# Jobs beat from a thread every 15 s, also while loading and saving.
JOB_HEARTBEAT_TIMEOUT = env_int("JOB_HEARTBEAT_TIMEOUT", env_int("TRAINING_HEARTBEAT_TIMEOUT", 120))
# A fresh platform's base model answers like a chatbot: once references are imported, train the first
# SFT without waiting for staff (quick path on a CPU, all references on a GPU) and activate it if it
# beats the base. On by default; only past AUTO_FIRST_SFT_MIN_PROMPTS prompts with references, so the
# demo set alone trains nothing. The tests turn it off.
AUTO_FIRST_SFT = env_bool("AUTO_FIRST_SFT", True)
AUTO_FIRST_SFT_MIN_PROMPTS = env_int("AUTO_FIRST_SFT_MIN_PROMPTS", 200)

# --- Evaluation -----------------------------------------------------------------------------------
# Held-out sentences per evaluation; 0 = the whole held-out split (the default: on 200 sentences J's
# standard error is about +-0.02, as large as the differences the promotion gate has to judge).
EVAL_SAMPLE_SIZE = env_int("EVAL_SAMPLE_SIZE", 0)
EVAL_SEED = env_int("EVAL_SEED", 0)
EVAL_AUTO = env_bool("EVAL_AUTO", True)  # queue an evaluation when a version is registered
# Causal LM for the fluency score: "base" = the converted bundled base model, "" = checks only, or a path.
EVAL_FLUENCY_LM = os.environ.get("EVAL_FLUENCY_LM", "base")
EVAL_TOXICITY_CLASSIFIER = os.environ.get("EVAL_TOXICITY_CLASSIFIER", "profanity-check")  # or a model path/hub id
# Promotion gate: activating a version whose J drops significantly against the active version's on the
# same prompts (upper bound of the paired bootstrap interval of ΔJ below -PROMOTION_J_TOLERANCE), whose
# SIM is below PROMOTION_MIN_SIM, or that has no comparison with the active one, needs an override.
PROMOTION_MIN_SIM = float(os.environ.get("PROMOTION_MIN_SIM", 0.6))
PROMOTION_J_TOLERANCE = float(os.environ.get("PROMOTION_J_TOLERANCE", 0.0))
PROMOTION_BOOTSTRAP_RESAMPLES = env_int("PROMOTION_BOOTSTRAP_RESAMPLES", 2000)
PROMOTION_BOOTSTRAP_SEED = env_int("PROMOTION_BOOTSTRAP_SEED", 0)
PROMOTION_CONFIDENCE = float(os.environ.get("PROMOTION_CONFIDENCE", 0.95))

# --- Operations -----------------------------------------------------------------------------------
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")  # bearer token for GET /metrics (staff may always read it)
