"""Detox Studio settings: every knob comes from the environment, with defaults that make a fresh
clone work offline (SQLite file, local Redis, the bundled model, a model store under ``var/``)."""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DETOX_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

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
RQ_QUEUES = {
    "generation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600},
    "training": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 6 * 3600},
    "evaluation": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
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
POOL_TARGET = env_int("POOL_TARGET", 12)  # ready items kept ahead for the active version
POOL_BATCH = env_int("POOL_BATCH", 4)  # items one refill job generates before re-checking
ANNOTATION_OVERLAP = env_int("ANNOTATION_OVERLAP", 1)  # judgements an item needs before it leaves the pool
ASSIGNMENT_TTL_MINUTES = env_int("ASSIGNMENT_TTL_MINUTES", 30)
GOLD_RATE = float(os.environ.get("GOLD_RATE", 0.1))  # share of served items that are gold (quality control)
POOL_ORDER = os.environ.get("POOL_ORDER", "random")  # or "uncertain": disagreeing judgements, then most different candidates, first
HELDOUT_PERCENT = env_int("HELDOUT_PERCENT", 5)
MAX_REWRITE_CHARS = env_int("MAX_REWRITE_CHARS", 1000)

# --- Quality control (the reviewer dashboard flags annotators past these limits) -------------------
QUALITY_MIN_GOLD_ACCURACY = float(os.environ.get("QUALITY_MIN_GOLD_ACCURACY", 0.6))
QUALITY_MIN_SECONDS_PER_ITEM = float(os.environ.get("QUALITY_MIN_SECONDS_PER_ITEM", 2.0))  # median; faster is implausible
QUALITY_MIN_ANSWERS = env_int("QUALITY_MIN_ANSWERS", 3)  # answers (gold ones for accuracy) before anyone is flagged
QUALITY_POSITION_BIAS_P = float(os.environ.get("QUALITY_POSITION_BIAS_P", 0.001))  # chi-square p below: position bias

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
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
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
WHITENOISE_USE_FINDERS = True  # serve app and sidecar static files without a collect step in dev

# --- Training -------------------------------------------------------------------------------------
TRAINING_JOB_TIMEOUT = env_int("TRAINING_JOB_TIMEOUT", 6 * 3600)
TRAINING_HEARTBEAT_TIMEOUT = env_int("TRAINING_HEARTBEAT_TIMEOUT", 900)  # seconds without progress = dead

# --- Evaluation -----------------------------------------------------------------------------------
EVAL_SAMPLE_SIZE = env_int("EVAL_SAMPLE_SIZE", 200)  # held-out sentences per evaluation
EVAL_SEED = env_int("EVAL_SEED", 0)
EVAL_AUTO = env_bool("EVAL_AUTO", True)  # queue an evaluation when a version is registered
# Causal LM for the fluency score: "base" = the converted bundled base model, "" = checks only, or a path.
EVAL_FLUENCY_LM = os.environ.get("EVAL_FLUENCY_LM", "base")
EVAL_TOXICITY_CLASSIFIER = os.environ.get("EVAL_TOXICITY_CLASSIFIER", "profanity-check")  # or a model path/hub id
# Promotion gate: activating a version whose J drops, or whose SIM is below this, needs an override.
PROMOTION_MIN_SIM = float(os.environ.get("PROMOTION_MIN_SIM", 0.6))
PROMOTION_J_TOLERANCE = float(os.environ.get("PROMOTION_J_TOLERANCE", 0.0))

# --- Operations -----------------------------------------------------------------------------------
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")  # bearer token for GET /metrics (staff may always read it)
