"""The only settings file: every value comes from an environment variable with a default that
works on a fresh clone (SQLite and media under ``var/``, no Redis, Celery embedded).

Setting ``DATABASE_URL`` and ``REDIS_URL`` switches to the production topology with no code change.
Secrets may come from ``<NAME>_FILE``. Nothing here does I/O beyond reading the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SKELEX_VAR_DIR", BASE_DIR / "var"))

DEV_SECRET_KEY = "dev-insecure-skelex-web-key-change-me"


def env(name: str, default: str = "") -> str:
    """``NAME`` from the environment, else the contents of the file named by ``NAME_FILE``."""
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return default


def env_bool(name: str, default: bool) -> bool:
    raw = env(name, "")
    if not raw:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = env(name, "")
    return int(raw) if raw else default


SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "skelex_web.projects",
    "skelex_web.studies",
    "skelex_web.labeling",
    "skelex_web.learning",
    "skelex_web.audit",
    "skelex_web.pages",
    "skelex_web.exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "skelex_web.urls"
ASGI_APPLICATION = "skelex_web.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "skelex_web" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'skelex.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Embedded mode: the worker thread and the web server share one file; wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["TEST"] = (
        {"NAME": str(VAR_DIR / "test.sqlite3")} if env_bool("SQLITE_TEST_FILE", False) else {}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
# Password guessing (skelex_web/signin.py): after this many failed sign-ins for one user name, or
# from one client address (more: a department behind one NAT address shares it), within
# SIGNIN_WINDOW_S seconds of the first, further sign-ins are refused (429) until that window ends.
# Counted in the cache (Redis in production). 0 = no such limit.
SIGNIN_FAILURES_PER_USER = env_int("SIGNIN_FAILURES_PER_USER", 10)
SIGNIN_FAILURES_PER_ADDRESS = env_int("SIGNIN_FAILURES_PER_ADDRESS", 50)
SIGNIN_WINDOW_S = env_int("SIGNIN_WINDOW_S", 900)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [("frontend", BASE_DIR / "frontend" / "src")]
# Serve static files from the ASGI app itself (demo and single-process deployments).
SERVE_STATIC = env_bool("SERVE_STATIC", True)
# Their Cache-Control where the URL carries no current ``?v=`` content version (those are cached
# for good): browsers revalidate (a 304) rather than run old and new modules together after an upgrade.
STATIC_CACHE_CONTROL = env("STATIC_CACHE_CONTROL", "no-cache")
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

# Uploads: whole requests above this are refused with 413 before any file is written.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 512 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Decoded images above this many pixels are refused (decompression bombs).
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 64_000_000)

# Key for the keyed patient pseudonyms and UID remapping (HMAC); per deployment, kept secret.
DEID_KEY = env("DEID_KEY", SECRET_KEY)

REDIS_URL = env("REDIS_URL", "")

if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery. Without REDIS_URL the broker is in-memory and a worker thread runs inside the web
# process (embedded mode, see skelex_web/embedded.py); CELERY_TASK_ALWAYS_EAGER runs tasks inline.
# "memory://localhost//": with no host kombu warns "No hostname was supplied" at every connection.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://localhost//")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_EMBEDDED_WORKER = env_bool("CELERY_EMBEDDED_WORKER", not REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "ingest"
CELERY_TASK_ROUTES = {
    "workers.ingest.*": {"queue": "ingest"},
    "workers.analysis.*": {"queue": "gpu"},
    "workers.pretrain.*": {"queue": "gpu"},
    "workers.learning.*": {"queue": "train"},
    "workers.export.*": {"queue": "export"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An unacknowledged task (its worker was killed) goes to another worker after this many seconds.
# Keep it above the longest batch; the pipeline tests lower it to see redelivery quickly.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
# On a lost broker connection, running tasks stop and are redelivered (acks_late) instead of finishing unacked.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Stuck-image sweep, sent by celery beat (the compose service ``beat``) to the ingest queue: images
# ingested/queued/analysing for longer than REQUEUE_STUCK_AFTER_S whose message the broker no longer
# holds are queued again (workers.sweep.requeue_stuck; by hand: manage.py requeue_stuck).
REQUEUE_STUCK_AFTER_S = env_int("REQUEUE_STUCK_AFTER_S", 1800)
REQUEUE_STUCK_EVERY_S = env_int("REQUEUE_STUCK_EVERY_S", 600)  # 0 = never
# Embedded mode (make demo): how often the app analyses images another process queued into its
# own, long gone, in-memory queue (manage.py import_images beside a running demo). 0 = never.
EMBEDDED_PICKUP_S = env_int("EMBEDDED_PICKUP_S", 15)
CELERY_BEAT_SCHEDULE = (
    {
        "requeue-stuck-images": {
            "task": "workers.sweep.requeue_stuck",
            "schedule": float(REQUEUE_STUCK_EVERY_S),
            "kwargs": {"older_than_s": REQUEUE_STUCK_AFTER_S},
            # A sweep not started within one interval is dropped: the next one does the same work.
            "options": {"expires": float(REQUEUE_STUCK_EVERY_S)},
        }
    }
    if REQUEUE_STUCK_EVERY_S > 0
    else {}
)

# ML: the backbone used when a project has none active, and the analysis batch size.
SKELEX_DEMO_CHECKPOINT = env(
    "SKELEX_DEMO_CHECKPOINT", str(BASE_DIR / "workers" / "ml" / "checkpoints" / "demo.safetensors")
)
ANALYSIS_BATCH_SIZE = env_int("ANALYSIS_BATCH_SIZE", 8)
ML_DEVICE = env("ML_DEVICE", "")

REST_FRAMEWORK = {
    # Token first: DRF answers an unauthenticated request with the first class's challenge, so
    # anonymous calls get 401 + "WWW-Authenticate: Token" (sign in) rather than 403 (not allowed).
    # Requests without an Authorization header still fall through to the browser's session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's, with a JSON parser that answers 400 to bodies nested too deep to decode.
    "DEFAULT_PARSER_CLASSES": [
        "skelex_web.projects.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "skelex_web.projects.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "skelex_web.projects.filters.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "skelex_web.projects.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "skelex-web API",
    "DESCRIPTION": "Studies, images, labels, suggestions and model versions of MSK radiograph projects.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from this app's static files, not a CDN: radiology networks are often offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Enums shared by several components, or two fields of one name ("kind" of an annotation and of a
    # model version): without a name of their own they get hashed ones.
    "ENUM_NAME_OVERRIDES": {
        "UploadStateEnum": "skelex_web.studies.models.UploadState",
        "AnnotationKindEnum": "skelex_web.labeling.models.AnnotationKind",
        "ModelKindEnum": "skelex_web.learning.models.ModelKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        # Pillow's image parsers log every metadata tag's value at DEBUG (the patient's name in an
        # EXIF Artist or a PNG text chunk): held at INFO so that LOG_LEVEL=DEBUG leaks no PHI.
        "PIL": {"level": "INFO"},
    },
}

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
# Sign-out after this many seconds without a request (8 hours: a reading shift; shared reading-room
# workstations must not stay signed in for Django's default two weeks). Each request moves the end.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_S", 8 * 3600)
SESSION_SAVE_EVERY_REQUEST = True
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
