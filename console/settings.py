"""Shoal's settings: every value comes from the environment (see README, "Configuration")."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from console import data_folder
from console.env import (
    adopt_sealed_environment,
    database_from_url,
    default_sqlite_url,
    env_bool,
    env_float,
    env_int,
    env_str,
    warehouse_from_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
adopt_sealed_environment()
# Set by the sandbox launcher for the warehouse worker, which signs and decrypts nothing: it gets a
# throwaway SECRET_KEY, so that neither the key nor keys derived from it are in its memory or files.
SECRETS_WITHHELD = env_bool("SHOAL_SECRETS_WITHHELD", False)

# Everything Shoal's processes create is owner-only (console/data_folder.py).
data_folder.restrict_umask()
DATA_DIR = Path(env_str("SHOAL_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, or one generated once and kept in the data folder."""
    if SECRETS_WITHHELD:
        return secrets.token_urlsafe(50)
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)

PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
_public = urlsplit(PUBLIC_BASE_URL)
if _public.scheme not in {"http", "https"} or not _public.hostname:
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL={PUBLIC_BASE_URL!r} is not an http(s) URL such as https://shoal.example.com"
    )

ALLOWED_HOSTS = sorted(
    {"127.0.0.1", "localhost", "[::1]", _public.hostname}
    | {h.strip() for h in env_str("ALLOWED_HOSTS").split(",") if h.strip()}
)
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

# --- HTTPS (docs/security.md, "HTTPS and headers") ---------------------------------------------
# Shoal serves plain HTTP on loopback; https is a reverse proxy's job. Whether a request came over
# https is known from X-Forwarded-Proto only when TRUST_X_FORWARDED_PROTO says the proxy sets it
# (and overwrites what a client sent): otherwise a client could claim https itself.
TRUST_X_FORWARDED_PROTO = env_bool("TRUST_X_FORWARDED_PROTO", False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
HTTPS = _public.scheme == "https"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# Redirect to https only when https can be recognised; without the proxy's header every request
# would look like http and be redirected forever.
SECURE_SSL_REDIRECT = HTTPS and TRUST_X_FORWARDED_PROTO
# Never redirected: Firehose does not follow redirects (it would retry the same POST until it gives
# up), a key it sent is sent by then anyway, and load balancers probe health over plain http.
SECURE_REDIRECT_EXEMPT = [r"^ingest/", r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Asking browsers' makers to hard-code https for the domain (HSTS preload) is the domain owner's
# decision, not Shoal's; the check that suggests it is silenced unless SECURE_HSTS_PRELOAD is on.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Only Shoal's own origin, for everything; no inline script or style, no eval (console/csp.py).
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # the management API's docs page and its static files (console/access/api/manage.py)
    "axes",
    "console",
    "pools",
    "pools.aws",
    "views_mv",
    "console.access.api",
]

MIDDLEWARE = [
    # Outermost: whatever happens under the ingest URL, Firehose gets its JSON reply.
    "pools.ingest.endpoint.FirehoseRepliesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "console.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Default-deny: every view needs a signed-in user unless it is marked login_not_required
    # (ingest, login, the setup link, health); console.roles adds the role each view needs.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The API's answer while Redis is down: a 503 with Retry-After, never a 500 page.
    "console.access.api.outage.OutageMiddleware",
    # Last, as django-axes asks: it turns a lock-out into the page that says so.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "console.roles.context",
            ],
        },
    },
]


DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL") or default_sqlite_url(DATA_DIR), data_dir=DATA_DIR)
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# --- Sign-in throttling (django-axes; console/accounts.py) ------------------------------------
# The first backend refuses a locked-out username or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT failed sign-ins for one username (from any address), or from one address
# (whatever the username), lock that username or address out for LOGIN_LOCKOUT_SECONDS.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Failures expire with the lock-out period rather than on a successful sign-in: django-axes
# would clear every failure from the signing-in address too, so anyone with an account could wipe
# the count of their guesses at another one by signing in as themselves.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "console.accounts.lockout_response"
AXES_CLIENT_IP_CALLABLE = "console.accounts.client_address"
# Behind a reverse proxy that appends the client's address to X-Forwarded-For (and strips nothing
# a client could forge before it), take the right-most entry as the client's address.
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "pools:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # django-axes announces itself at every start (every command); its sign-in records stay.
        "axes.apps": {"level": "WARNING"},
        # At DEBUG, botocore logs signed request headers (session tokens included): never.
        "botocore": {"level": "INFO"},
        "boto3": {"level": "INFO"},
    },
}

# --- Redis and Celery -------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if urlsplit(REDIS_URL).scheme not in {"redis", "rediss", "unix"}:
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} is not a redis:// URL")

# Sessions live in Redis, not in Django's database: with SQLite the warehouse worker must be able
# to open the database file, and a session key read from it would be a login (docs/security.md).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "shoal",
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "console.tasks.*": {"queue": "warehouse"},
    "console.access.api.tasks.*": {"queue": "warehouse"},
    "pools.tasks.warehouse_*": {"queue": "warehouse"},
    "pools.tasks.*": {"queue": "default"},
    "pools.aws.tasks.*": {"queue": "default"},
    # Step 1 of a Replica check reads DynamoDB: AWS credentials stay out of the warehouse worker.
    "views_mv.tasks.replica_scan": {"queue": "default"},
    "views_mv.tasks.*": {"queue": "warehouse"},
}
# A load that was running when its worker died is delivered again (and is idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# What `make run` starts (console/supervisor.py): web processes and threads, the warehouse worker's
# threads and its CPU priority (loading yields the CPU to the web process on a small machine).
WEB_WORKERS = env_int("WEB_WORKERS", 2, minimum=1)
WEB_THREADS = env_int("WEB_THREADS", 24, minimum=2)
# Of each web process's threads, how many Firehose requests may wait for room in a pool's backlog
# (pools/ingest/pacing.py) and how many may wait on the warehouse (queries, Preview, exports
# streaming out; console/admission.py): at least 4 stay free for Firehose deliveries that land,
# /healthz, /readyz and the console's pages, whatever users run or senders wait for.
# By default the threads past 16, at most 8: a smaller WEB_THREADS keeps its query slots.
INGEST_BACKLOG_WAITERS = env_int("INGEST_BACKLOG_WAITERS", min(8, max(0, WEB_THREADS - 16)), minimum=0)
WEB_QUERY_SLOTS = env_int("WEB_QUERY_SLOTS", max(1, WEB_THREADS - 4 - INGEST_BACKLOG_WAITERS), minimum=1)
if WEB_QUERY_SLOTS + INGEST_BACKLOG_WAITERS >= WEB_THREADS:
    raise ImproperlyConfigured(
        f"WEB_QUERY_SLOTS={WEB_QUERY_SLOTS} plus INGEST_BACKLOG_WAITERS={INGEST_BACKLOG_WAITERS} must "
        f"be below WEB_THREADS={WEB_THREADS}: deliveries and health checks need threads that no query "
        "or waiting sender can take"
    )
WAREHOUSE_CONCURRENCY = env_int("WAREHOUSE_CONCURRENCY", 4, minimum=1)
WAREHOUSE_NICE = env_int("WAREHOUSE_NICE", 10, minimum=0, maximum=19)
# Workers try the broker again every second after losing it (console/celery.py's Consumer).
CELERY_WORKER_CONSUMER = "console.celery:Consumer"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # A publish to a Redis that is down fails after one quick retry instead of kombu's default
    # ~6 s of retries: the ingest endpoint's 200 must not wait on Redis (the sweep queues the load
    # later), and the web pages say "try again" at once. Workers reconnect with their own policy.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "socket_connect_timeout": 2,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
AWS_MONITOR_INTERVAL = env_float("AWS_MONITOR_INTERVAL", 60.0, minimum=10.0)
CELERY_BEAT_SCHEDULE = {
    "sweep-landed-deliveries": {
        "task": "pools.tasks.sweep_deliveries",
        "schedule": env_float("SHOAL_SWEEP_INTERVAL", 10.0, minimum=1.0),
    },
    "pool-statistics": {"task": "pools.tasks.warehouse_pool_stats", "schedule": 60.0},
    "resume-backfills": {"task": "views_mv.tasks.warehouse_sweep_backfills", "schedule": 30.0},
    # Resources' status and failed deliveries (with Firehose's reasons), without "Check now".
    "aws-status-and-snapshots": {"task": "pools.aws.tasks.sweep_aws", "schedule": AWS_MONITOR_INTERVAL},
    "prune-deliveries": {"task": "pools.tasks.prune_deliveries", "schedule": 3600.0},
}
# Loaded deliveries' metadata is pruned after this many days (0 keeps it forever). A delivery row
# is what makes Firehose's retry of a request a no-op: keep it well past Firehose's retry window.
DELIVERY_RETENTION_DAYS = env_int("DELIVERY_RETENTION_DAYS", 30, minimum=0)
CELERY_TASK_ALWAYS_EAGER = False

# --- Operator view (console/access/metrics.py) ---------------------------------------------------------
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; without a token it is off (404).
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- Warehouse --------------------------------------------------------------------------------
WAREHOUSE = warehouse_from_url(env_str("WAREHOUSE_URL"), data_dir=DATA_DIR)
# How long the web process and commands wait for a warehouse worker to answer.
WAREHOUSE_TIMEOUT = env_float("WAREHOUSE_TIMEOUT", 30.0, minimum=1.0)
SQL_MAX_EXECUTION_SECONDS = env_int("SQL_MAX_EXECUTION_SECONDS", 30, minimum=1)
SQL_MAX_RESULT_ROWS = env_int("SQL_MAX_RESULT_ROWS", 10_000, minimum=1)
# Users' queries (SQL Console, Preview, Replica check, a view's Test, the query APIs) run on a
# fair pool of their own in the warehouse worker (console/user_queries.py), apart from loading and
# backfills: at most
# WAREHOUSE_USER_CONCURRENCY at once, SQL_MAX_CONCURRENT_PER_USER of them for one user, each with
# SQL_MAX_THREADS threads at the lowest CPU priority and SQL_MAX_MEMORY_BYTES of memory (spilling
# to disk past half).
WAREHOUSE_USER_CONCURRENCY = env_int("WAREHOUSE_USER_CONCURRENCY", 8, minimum=1)
SQL_MAX_CONCURRENT_PER_USER = env_int("SQL_MAX_CONCURRENT_PER_USER", 2, minimum=1)
# Queries one identity may have waiting for a thread, past which one more is refused (429).
SQL_MAX_QUEUED_PER_USER = env_int("SQL_MAX_QUEUED_PER_USER", 2, minimum=0)
SQL_MAX_MEMORY_BYTES = env_int("SQL_MAX_MEMORY_BYTES", 2 * 1024**3, minimum=16 * 1024**2)
SQL_MAX_THREADS = env_int("SQL_MAX_THREADS", 2, minimum=1)
# How the warehouse worker is confined (console/sandbox.py): "landlock" where the kernel has it
# (a log line says when it cannot be applied), or "off".
WAREHOUSE_SANDBOX = env_str("WAREHOUSE_SANDBOX", "landlock").strip().lower()
if WAREHOUSE_SANDBOX not in {"landlock", "off"}:
    raise ImproperlyConfigured(f"WAREHOUSE_SANDBOX={WAREHOUSE_SANDBOX!r} must be landlock or off")
# Extra paths the sandboxed warehouse worker may read (colon-separated), e.g. a CA bundle elsewhere.
WAREHOUSE_SANDBOX_READ = [p for p in env_str("WAREHOUSE_SANDBOX_READ").split(":") if p]

# --- HTTP API (console/access/api/) --------------------------------------------------------------------
# Requests per minute per API key (0: no limit); rows of a streamed answer (CSV, Parquet, the
# /clickhouse interface), whose JSON answers keep SQL_MAX_RESULT_ROWS.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600, minimum=0)
API_EXPORT_MAX_ROWS = env_int("API_EXPORT_MAX_ROWS", 10_000_000, minimum=1)
# Bytes of one streamed answer (exports, /clickhouse), past which it stops with ClickHouse's
# TOO_MANY_ROWS_OR_BYTES error; bytes of a JSON answer, which the web process builds whole.
SQL_MAX_RESULT_BYTES = env_int("SQL_MAX_RESULT_BYTES", 16 * 1024**3, minimum=1024)
API_JSON_MAX_BYTES = env_int("API_JSON_MAX_BYTES", 32 * 1024**2, minimum=1024)

# --- AWS (pools/aws/clients.py) ---------------------------------------------------------------
AWS_CONNECT_TIMEOUT = env_float("AWS_CONNECT_TIMEOUT", 5.0, minimum=0.1)
AWS_READ_TIMEOUT = env_float("AWS_READ_TIMEOUT", 30.0, minimum=0.1)
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 4, minimum=1)
# Encrypts AWS secret keys at rest; by default a key derived from SECRET_KEY.
AWS_SECRETS_KEY = "" if SECRETS_WITHHELD else env_str("AWS_SECRETS_KEY")
# An AWS connection may name its own endpoint (a local emulator such as moto) only when this is
# set (`make demo` sets it); otherwise the field does not exist and a stored one is ignored, so no
# one can make Shoal send signed AWS requests to a host of their choosing.
AWS_ALLOW_EMULATOR = env_bool("AWS_ALLOW_EMULATOR", False)

# --- Ingest -----------------------------------------------------------------------------------
# Where landed bodies wait for the warehouse: "files" (an fsync'ed journal in the data folder, for
# one host) or "database" (Django's database, for web and workers on different hosts).
INGEST_LANDING = env_str(
    "INGEST_LANDING",
    "files" if DATABASES["default"]["ENGINE"].endswith("sqlite3") else "database",
)
if INGEST_LANDING not in {"files", "database"}:
    raise ImproperlyConfigured(f"INGEST_LANDING={INGEST_LANDING!r} must be files or database")
# Back-pressure: past the soft limit of bytes waiting for the warehouse (while a warehouse worker
# is running), a pool answers 503 so that Firehose keeps the data and retries; past the hard
# limit it does so whatever the state of the workers, to protect the disk.
INGEST_BACKLOG_SOFT_BYTES = env_int("INGEST_BACKLOG_SOFT_BYTES", 128 * 1024 * 1024, minimum=0)
INGEST_BACKLOG_HARD_BYTES = env_int("INGEST_BACKLOG_HARD_BYTES", 4 * 1024 * 1024 * 1024, minimum=0)
# Past the soft limit a request waits up to INGEST_BACKLOG_WAIT seconds for room before its 503,
# at most INGEST_BACKLOG_WAITERS at a time per web process (pools/ingest/pacing.py).
INGEST_BACKLOG_WAIT = env_float("INGEST_BACKLOG_WAIT", 5.0, minimum=0.0)
# Free space the data folder keeps: a delivery that would leave less is answered 503 (retried by
# Firehose) rather than filling the disk the warehouse also needs.
INGEST_MIN_FREE_BYTES = env_int("INGEST_MIN_FREE_BYTES", 256 * 1024 * 1024, minimum=0)
# Firehose sends at most 64 MiB before compression, plus base64 and JSON overhead.
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 128 * 1024 * 1024, minimum=1024)
# Bodies over INGEST_LARGE_BODY_BYTES (or of unknown length) are held INGEST_LARGE_BODIES at a
# time per web process; one that waits INGEST_LARGE_BODY_WAIT seconds is answered 503 (retried).
INGEST_LARGE_BODY_BYTES = env_int("INGEST_LARGE_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
INGEST_LARGE_BODIES = env_int("INGEST_LARGE_BODIES", 2, minimum=1)
INGEST_LARGE_BODY_WAIT = env_float("INGEST_LARGE_BODY_WAIT", 10.0, minimum=0.0)
# INGEST_AUTH_FAILURE_LIMIT wrong credentials from one address to one pool within
# INGEST_AUTH_LOCKOUT_SECONDS hold back that address's Basic credentials for the rest of the period
# (pools/ingest/auth.py); the pool's access key is never held back.
INGEST_AUTH_FAILURE_LIMIT = env_int("INGEST_AUTH_FAILURE_LIMIT", 20, minimum=1)
INGEST_AUTH_LOCKOUT_SECONDS = env_int("INGEST_AUTH_LOCKOUT_SECONDS", 300, minimum=1)
# A delivery claimed by a loader that has not finished after this long is loaded again.
# A view's insert over one batch (views_mv/apply.py): past either limit the batch's records are
# listed as the view's failures and the pool goes on loading.
VIEW_MAX_EXECUTION_SECONDS = env_int("VIEW_MAX_EXECUTION_SECONDS", 60, minimum=1)
VIEW_MAX_MEMORY_BYTES = env_int("VIEW_MAX_MEMORY_BYTES", 2 * 1024**3, minimum=16 * 1024**2)
LOAD_STALE_SECONDS = env_float("SHOAL_LOAD_STALE_SECONDS", 120.0, minimum=1.0)
# Rows per chunk of a Materialized View's backfill (a chunk is one resumable INSERT … SELECT).
MV_BACKFILL_CHUNK_ROWS = env_int("MV_BACKFILL_CHUNK_ROWS", 2_500_000, minimum=1)
# Group commit: one INSERT loads whatever has landed, up to these many deliveries, bytes of
# bodies and records (a single delivery at once when idle, so data is fresh).
LOAD_BATCH_DELIVERIES = env_int("SHOAL_LOAD_BATCH", 1000, minimum=1)
LOAD_BATCH_BYTES = env_int("SHOAL_LOAD_BATCH_BYTES", 64 * 1024 * 1024, minimum=1)
LOAD_BATCH_RECORDS = env_int("SHOAL_LOAD_BATCH_RECORDS", 100_000, minimum=1)
# A pull reader this far behind (seconds) is warned about on its pipeline's page: the streams keep
# records 24 hours (pools/pull/status.py).
PULL_LAG_WARN_SECONDS = env_int("PULL_LAG_WARN_SECONDS", 6 * 3600, minimum=60)
# Records asked for per GetRecords call (each page is one delivery and one checkpoint).
PULL_PAGE_LIMIT = env_int("PULL_PAGE_LIMIT", 1000, minimum=1, maximum=10_000)
# Threads that read and parse one batch's bodies (the insert itself stays one block: see
# pools/loader/batch.py). Default: one per core.
LOAD_READ_THREADS = env_int("SHOAL_LOAD_READ_THREADS", os.cpu_count() or 1, minimum=1)
