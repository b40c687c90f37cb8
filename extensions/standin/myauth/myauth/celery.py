"""Django-free stand-in for Alliance Auth 5.5's ``myauth/myauth/celery.py``.

The Celery options below are the ones the real generated project sets (see
README.md); only the Django bits (``config_from_object('django.conf:settings')``,
``autodiscover_tasks``, celery_once's DjangoBackend) are replaced.

Configuration comes from environment variables, optionally pre-seeded from a
``standin.env`` file (``KEY=VALUE`` lines) in the project directory, so that a
supervisor.conf identical in shape to Auth's can be used unchanged:

``MYAUTH_BROKER_URL``
    Default ``redis://127.0.0.1:6379/0`` -- unless ``MYAUTH_DATA_DIR`` is set,
    then ``filesystem://`` (no server needed).
``MYAUTH_RESULT_BACKEND``
    Default ``redis://127.0.0.1:6379/1`` -- with the filesystem broker
    ``file://<MYAUTH_DATA_DIR>/results``.
``MYAUTH_DATA_DIR``
    Root for the filesystem transport (``queue/``, ``control/``,
    ``processed/``), file results and the beat schedule.  Defaults to
    ``<project dir>/data`` when the filesystem broker is selected.
``MYAUTH_BEAT_PING_SECONDS``
    If > 0, beat sends ``myauth.tasks.ping`` at that interval (default off).
``MYAUTH_DB_SOCKET``, ``MYAUTH_DB_NAME``, ``MYAUTH_DB_USER``, ``MYAUTH_DB_PASSWORD``
    The MariaDB/MySQL database of the ``esi_db`` task (unix socket; name default
    ``alliance_auth``, user ``allianceserver``, password empty).  Only that task
    uses them; without a socket it returns an error and the other tasks still work.
"""
import os

from celery import Celery
from celery.app import trace

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_env_file(path):
    """Seed os.environ from KEY=VALUE lines; real environment wins."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line or line.startswith("#") or "=" not in line:
                    continue
                key, value = line.split("=", 1)
                os.environ.setdefault(key.strip(), value.strip().strip("'\""))
    except FileNotFoundError:
        pass


_load_env_file(os.environ.get("MYAUTH_ENV_FILE", os.path.join(PROJECT_DIR, "standin.env")))

_explicit_data_dir = os.environ.get("MYAUTH_DATA_DIR") or None
BROKER_URL = os.environ.get("MYAUTH_BROKER_URL") or (
    "filesystem://localhost/" if _explicit_data_dir else "redis://127.0.0.1:6379/0"
)
USES_FILESYSTEM = BROKER_URL.startswith("filesystem:")
DATA_DIR = os.path.abspath(_explicit_data_dir or os.path.join(PROJECT_DIR, "data"))
RESULT_BACKEND = os.environ.get("MYAUTH_RESULT_BACKEND") or (
    "file://" + os.path.join(DATA_DIR, "results") if USES_FILESYSTEM
    else "redis://127.0.0.1:6379/1"
)

DB = {
    "socket": os.environ.get("MYAUTH_DB_SOCKET") or None,
    "name": os.environ.get("MYAUTH_DB_NAME") or "alliance_auth",
    "user": os.environ.get("MYAUTH_DB_USER") or "allianceserver",
    "password": os.environ.get("MYAUTH_DB_PASSWORD") or "",
}

app = Celery("myauth")

# --- as in Auth 5.5 --------------------------------------------------------
# Automatically try to establish the connection to the AMQP broker on
# Celery startup if it is unavailable.
app.conf.broker_connection_retry_on_startup = True

# Auth: BROKER_URL = "redis://localhost:6379/0" (settings/base.py).
app.conf.broker_url = BROKER_URL
if USES_FILESYSTEM:
    # kombu's filesystem transport, with atomic writes (see atomic_fs.py).
    app.conf.broker_transport = "myauth.atomic_fs:Transport"
# Auth configures NO result backend (results are disabled there).  The
# stand-in needs one so tests can AsyncResult.get().
app.conf.result_backend = RESULT_BACKEND

# setup priorities ( 0 Highest, 9 Lowest )
transport_options = {
    "priority_steps": list(range(10)),  # setup que to have 10 steps
    "queue_order_strategy": "priority",  # setup que to use prio sorting
}
if USES_FILESYSTEM:
    queue_dir = os.path.join(DATA_DIR, "queue")
    transport_options.update({
        # one folder for both directions: producers and consumers on one host
        "data_folder_in": queue_dir,
        "data_folder_out": queue_dir,
        "control_folder": os.path.join(DATA_DIR, "control"),
        "processed_folder": os.path.join(DATA_DIR, "processed"),
        "store_processed": False,
        # kombu polls the folder once a second by default: too slow to compare pools.
        "polling_interval": 0.05,
    })
    for sub in ("queue", "control", "processed", "results"):
        os.makedirs(os.path.join(DATA_DIR, sub), exist_ok=True)
elif RESULT_BACKEND.startswith("file://"):
    os.makedirs(RESULT_BACKEND[len("file://"):], exist_ok=True)
app.conf.broker_transport_options = transport_options

app.conf.task_default_priority = 5  # anything called with the task.delay() will be given normal priority (5)
app.conf.worker_prefetch_multiplier = 1  # only prefetch single tasks at a time on the workers so that prio tasks happen
app.conf.worker_eta_task_limit = 100  # Stops the worker from filling itself with ETA tasks and OOMing

# Auth leaves these at Celery's defaults; spelled out for the tests' sake.
app.conf.task_default_queue = "celery"
app.conf.task_acks_late = False

app.conf.task_routes = {
    # Some AA Services are sensitive to threaded tasks
    # Utilize a single threaded worker to process these tasks
    # Discord: Multithreads can cause duplicate role creation.
    "discord.*": {"queue": "services"},
    # stand-in for the services (discord.*) tasks
    "myauth.tasks.sync_services": {"queue": "services"},
}

# Auth uses a DB scheduler (allianceauth.crontab.schedulers.OffsetDatabaseScheduler);
# the stand-in uses Celery's file-based default, kept out of the project root
# when a data dir is in use.
_beat_dir = DATA_DIR if (USES_FILESYSTEM or _explicit_data_dir) else PROJECT_DIR
os.makedirs(_beat_dir, exist_ok=True)
app.conf.beat_schedule_filename = os.path.join(_beat_dir, "celerybeat-schedule")
_beat_every = float(os.environ.get("MYAUTH_BEAT_PING_SECONDS") or 0)
app.conf.beat_schedule = (
    {"standin-ping": {"task": "myauth.tasks.ping", "schedule": _beat_every}}
    if _beat_every > 0 else {}
)

# Auth: app.autodiscover_tasks(lambda: settings.INSTALLED_APPS)
app.conf.imports = ("myauth.tasks",)

# Remove result from default log message on task success
trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"
