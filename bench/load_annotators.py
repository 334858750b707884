"""Team load: N simulated annotators against a real gunicorn on loopback; prints ONE JSON object.

    python bench/load_annotators.py --annotators 50 --database postgres --seconds 120 [--out FILE]
    python bench/load_annotators.py --annotators 10 --database sqlite --seconds 60
    python bench/load_annotators.py --annotators 50 --database postgres --seconds 120 --model var/models/sft-3

Setup (this process, through Django): a fresh database (PostgreSQL ``--pg-url``, dropped and
created again; or a new SQLite file under var/), migrations, synthetic prompts, an active model
version, N annotator users with API tokens, and Redis database ``--redis-url`` flushed. gunicorn is
started with the Procfile's ``--workers``/``--threads`` unless overridden; the server keeps
``DETOX_AUTO_REFILL`` on, so it pays for ``request_refill`` as in production.

Supply, by default: the pool is pre-filled and then kept at ``--pool-target`` items by a refill loop
in this process that calls the real ``training.generation.refill_pool`` with a *stub generator*
(fixed texts, no model): what is measured is the web, database and Redis path, not sampling speed
(see bench/bench_generation.py for that); the few refill jobs the server queues are never run.

Supply with ``--model DIR`` (a checkpoint directory: config.json, tokenizer, maybe ``ct2-int8/``):
the production path. DIR is linked file by file into a scratch model store (var/load-models; a
conversion to ct2-int8 is written there, never into DIR), registered and activated as a version,
and the Procfile's ``generation`` worker (``manage.py rqworker generation``) runs the refill jobs that
the activation and the server queue, with settings' POOL_TARGET/POOL_BATCH unless ``--pool-target``
is given. Annotators start once the pool holds the target (at most ``--prefill-seconds``); the
report adds the pre-fill time, the items created during the run and per second, and the worker's
CPU seconds. The worker is stopped at the end (warm, then cold, then killed), as gunicorn is.

Each annotator loops until ``--seconds`` (at most 150) are up: ``GET /api/annotate/next/?wait=W``,
think 3-5 s, ``POST /api/judgements/`` with a random candidate id. Reported: requests/s,
p50/p95/p99 of next-item and submit, errors, pool-empty answers, acknowledged judgements against
rows in the database (each exactly once), the load average and, from it, whether the machine was
idle or shared (``machine_note``). Only 127.0.0.1 is ever contacted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
HARD_CAP_SECONDS = 150
LOOPBACK = "127.0.0.1"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--annotators", type=int, default=10)
    p.add_argument("--seconds", type=float, default=120, help=f"run length (hard cap {HARD_CAP_SECONDS})")
    p.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/detox_load", help="dropped and recreated")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="flushed")
    p.add_argument("--port", type=int, default=8190)
    p.add_argument("--target", help="an already running server (http://127.0.0.1:PORT) using the same database and Redis")
    p.add_argument("--workers", type=int, help="gunicorn workers (default: the Procfile's)")
    p.add_argument("--threads", type=int, help="gunicorn threads per worker (default: the Procfile's)")
    p.add_argument("--wait", type=int, default=20, help="long-poll seconds of each next-item request (0: no wait)")
    p.add_argument("--think", default="3,5", help="think time range in seconds, MIN,MAX")
    p.add_argument(
        "--pool-target", type=int,
        help="ready items kept ahead (default: 2 x annotators, at least 12; with --model settings' POOL_TARGET)",
    )
    p.add_argument(
        "--model", type=Path, metavar="DIR",
        help="a checkpoint directory: supply from a real generation worker sampling with it, not the stub",
    )
    p.add_argument("--prefill-seconds", type=float, default=120, help="with --model: longest wait for a full pool")
    p.add_argument("--prompts", type=int, default=5000)
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()
    if not 0 < args.seconds <= HARD_CAP_SECONDS:
        p.error(f"--seconds must be in (0, {HARD_CAP_SECONDS}]")
    if not 1 <= args.annotators <= 500:
        p.error("--annotators must be between 1 and 500")
    if args.model is not None:
        args.model = args.model.resolve()
        if not (args.model / "config.json").is_file():
            p.error(f"--model {args.model}: no config.json there, not a checkpoint directory")
    for url in filter(None, [args.target, args.pg_url if args.database == "postgres" else None, args.redis_url]):
        if urlparse(url).hostname != LOOPBACK:
            p.error(f"refusing {url}: this load generator only talks to {LOOPBACK}")
    return args


def procfile_web_options() -> dict[str, int]:
    """--workers, --threads and --keep-alive of the Procfile's web line (``${VAR:-N}`` reads as N),
    so the bench measures what is deployed."""
    line = next(l for l in (REPO / "Procfile").read_text().splitlines() if l.startswith("web:"))
    options = {"workers": 1, "threads": 1, "keep-alive": 2}  # gunicorn's defaults
    for name in options:
        found = re.search(rf"--{name}[= ]+\"?(?:\$\{{\w+:-)?(\d+)", line)
        if found:
            options[name] = int(found.group(1))
    return options


def procfile_command(name: str) -> list[str]:
    """The Procfile's ``name:`` command as argv, ``python`` being this checkout's .venv python, so the
    bench starts the worker that is deployed."""
    line = next(l for l in (REPO / "Procfile").read_text().splitlines() if l.startswith(f"{name}:"))
    argv = shlex.split(line.split(":", 1)[1])
    return [str(REPO / ".venv" / "bin" / "python") if argv[0] == "python" else argv[0], *argv[1:]]


def fresh_database(args: argparse.Namespace) -> str:
    if args.database == "sqlite":
        path = REPO / "var" / "load.sqlite3"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    name = urlparse(args.pg_url).path.lstrip("/")
    admin = args.pg_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return args.pg_url


class StubGenerator:
    """Three distinct fixed rewrites per prompt at once: supply is never the bottleneck here."""

    backend = "stub"
    texts = ("please be kind to each other", "kindly stop saying that", "let us talk calmly")

    def sample_batch(self, toxics: list[str], config: Any, *, seed: int) -> list[list[Any]]:
        from training.ml.generate import SampledRewrite

        return [[SampledRewrite(text=t, seed=seed, index=i, seconds=0.0) for i, t in enumerate(self.texts)] for _ in toxics]

    def provenance(self, config: Any) -> dict[str, Any]:
        return {**config.as_dict(), "backend": self.backend}


def link_checkpoint(source: Path, model_store: Path) -> str:
    """Make checkpoint ``source`` a version directory of ``model_store`` (returns its name): a real
    directory of symlinks to the checkpoint's entries, so the version's path lies in the store and
    what a worker writes beside them (a ct2-int8 conversion) stays in the scratch store, not in ``source``."""
    linked = model_store / source.name
    linked.mkdir(parents=True)
    for entry in source.iterdir():
        (linked / entry.name).symlink_to(entry)
    return source.name


def register_checkpoint(directory: str) -> Any:
    """Register ``MODEL_STORE/directory`` as a version, with the kind and provenance of its version.json,
    and activate it with ``activate_version`` (which queues the first refill after commit).
    No VERSION_REGISTERED announcement: nothing here would run the evaluation it queues."""
    from django.conf import settings

    from training.models import ModelVersion
    from training.services import activate_version

    meta_file = Path(settings.MODEL_STORE) / directory / "version.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    version = ModelVersion.objects.create(
        name=directory,
        kind=meta["kind"] if meta.get("kind") in ModelVersion.Kind.values else ModelVersion.Kind.BASE,
        directory=directory,
        source=meta.get("source") or "",
        hyperparameters=meta.get("hyperparameters") or {},
        library_versions=meta.get("library_versions") or {},
        notes="Registered by bench/load_annotators.py --model",
    )
    activate_version(version=version, reason="load benchmark")
    return version


def seed_platform(args: argparse.Namespace) -> tuple[int, list[tuple[int, str]]]:
    """Prompts, an active version (the stub, or ``--model`` linked into the model store) and annotators
    with tokens; returns (version id, [(user id, token)])."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotations.importers import PromptRecord, import_prompts
    from annotations.models import Prompt
    from training.models import ModelVersion

    call_command("migrate", verbosity=0)
    import_prompts((PromptRecord(f"load prompt {i}: you are a total idiot", ()) for i in range(args.prompts)), source="load")
    Prompt.objects.update(is_heldout=False)
    if args.model is None:
        version = ModelVersion.objects.create(name="load-stub", kind="base", directory="load-stub", is_active=True)
    else:
        version = register_checkpoint(link_checkpoint(args.model, Path(settings.MODEL_STORE)))
    users = []
    for i in range(args.annotators):
        user = get_user_model()(username=f"load-annotator-{i}")
        user.set_unusable_password()  # tokens only; hashing 50 passwords would dominate the setup
        user.save()
        users.append((user.pk, Token.objects.create(user=user).key))
    return version.pk, users


def refill_loop(version_id: int, target: int, stop: threading.Event, stats: dict[str, Any]) -> None:
    """Keep the pool at ``target`` with the real refill path and a stub generator (signals waiters)."""
    from django.db import connection

    from training.generation import refill_pool

    generator = StubGenerator()
    try:
        while not stop.is_set():
            stats["items_generated"] += refill_pool(version_id, target=target, generator_factory=lambda path: generator)
            stop.wait(0.2)
    finally:
        connection.close()


def start_server(args: argparse.Namespace, env: dict[str, str], options: dict[str, int]) -> subprocess.Popen:
    log = open(REPO / "var" / f"load-gunicorn-{args.database}.log", "w")
    cmd = [
        str(REPO / ".venv" / "bin" / "gunicorn"), "detoxsite.wsgi", "--bind", f"{LOOPBACK}:{args.port}",
        "--workers", str(options["workers"]), "--threads", str(options["threads"]),
        "--keep-alive", str(options["keep-alive"]), "--timeout", "120",
    ]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def start_worker(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen:
    """The Procfile's generation worker, with the server's environment (database, Redis, model store)."""
    log = open(worker_log(args), "w")
    return subprocess.Popen(
        procfile_command("generation"), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def worker_log(args: argparse.Namespace) -> Path:
    return REPO / "var" / f"load-worker-{args.database}.log"


def stop_worker(worker: subprocess.Popen) -> str:
    """Stop the generation worker and say how: ``warm`` (SIGTERM: RQ lets the job in progress finish),
    ``cold`` (a second SIGTERM ends the job) or ``killed`` (SIGKILL to its process group)."""
    if worker.poll() is not None:
        return f"exited by itself with status {worker.returncode}"
    for how, grace in (("warm", 5), ("cold", 10)):  # RQ ignores a second signal within 1 s of the first
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(grace)
            return how
        except subprocess.TimeoutExpired:
            pass
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    return "killed"


def process_cpu_seconds(process: subprocess.Popen | None) -> float | None:
    """CPU seconds (user + system, children it waited for included) used so far by ``process``; None
    without one or once it is gone. The generation worker is an rq.SimpleWorker: jobs run in it."""
    if process is None:
        return None
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def wait_for_pool(
    version_id: int, target: int, worker: subprocess.Popen, *, since: float, limit: float, log: Path
) -> dict[str, Any]:
    """Wait until ``target`` items of the version are ready, at most ``limit`` seconds after ``since``
    (a monotonic time: the worker's start), asking for a refill each second as the server does on
    next-item requests (one queued at a time); a worker that exits ends the wait with an error."""
    from annotations.pool import ready_count
    from training.generation import request_refill
    from training.models import ModelVersion

    version = ModelVersion.objects.get(pk=version_id)
    while (ready := ready_count(version)) < target and time.monotonic() - since < limit:
        if worker.poll() is not None:
            raise SystemExit(f"the generation worker exited (status {worker.returncode}) during the pre-fill; see {log}")
        request_refill(version)
        time.sleep(1)
    return {"seconds": round(time.monotonic() - since, 1), "ready": ready, "complete": ready >= target}


def items_created_between(version_id: int, start: Any, end: Any) -> int:
    """Annotation items of the version stored in [start, end) (aware datetimes): supply during a window."""
    from annotations.models import AnnotationItem

    return AnnotationItem.objects.filter(model_version_id=version_id, created_at__gte=start, created_at__lt=end).count()


def candidate_backends(version_id: int) -> list[str]:
    """Backends named in the provenance of the version's candidates: one, unless the worker fell back."""
    from annotations.models import Candidate

    found = Candidate.objects.filter(model_version_id=version_id).values_list("decoding__backend", flat=True)
    return sorted({str(b) for b in found.distinct()})


def server_cpu_seconds(server: subprocess.Popen | None) -> float | None:
    """CPU seconds (user + system) used so far by gunicorn's worker processes (children of the master)."""
    if server is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def wait_until_up(base: str, token: str, limit: float = 60) -> None:
    import requests

    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if requests.get(f"{base}/api/judgements/", headers={"Authorization": f"Token {token}"}, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server at {base} did not answer within {limit:.0f} s")


@dataclass
class Tally:
    """What the simulated annotators saw; appended from many threads (list.append is atomic)."""

    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    pool_empty: int = 0


def annotator(base: str, token: str, wait: int, think: tuple[float, float], end: float, tally: Tally) -> None:
    import requests

    session = requests.Session()  # keep-alive, like a browser tab
    session.headers["Authorization"] = f"Token {token}"
    rng = random.Random()
    empties = 0  # empty answers in a row that came back before their wait was up
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            response = session.get(f"{base}/api/annotate/next/", params={"wait": wait}, timeout=wait + 30)
        except requests.RequestException as exc:
            tally.errors.append(f"next: {type(exc).__name__}")
            time.sleep(1)
            continue
        tally.next_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            tally.errors.append(f"next: HTTP {response.status_code}")
            time.sleep(1)
            continue
        body = response.json()
        if body["status"] != "ready":
            tally.pool_empty += 1
            # As static/js/judge.js does: ask again at once after a full server-side wait, back off
            # (1, 2, 4, 8, 15 s) after an early empty answer (no waiting slot was free).
            waited_fully = time.perf_counter() - started >= 0.8 * wait if wait else False
            empties = 0 if waited_fully else empties + 1
            if empties:
                time.sleep(max(0.0, min(backoff_seconds(empties), end - time.monotonic())))
            continue
        empties = 0
        time.sleep(max(0.0, min(rng.uniform(*think), end - time.monotonic())))
        choice = rng.choice(body["assignment"]["candidates"])["id"]
        started = time.perf_counter()
        try:
            response = session.post(
                f"{base}/api/judgements/", json={"assignment": body["assignment"]["id"], "candidate": choice}, timeout=30
            )
        except requests.RequestException as exc:
            tally.errors.append(f"submit: {type(exc).__name__}")
            continue
        tally.submit_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code == 201:
            tally.acknowledged.append(response.json()["id"])
        else:
            tally.errors.append(f"submit: HTTP {response.status_code} {response.text[:120]}")


def backoff_seconds(misses: int) -> float:
    """judge.js's delay after ``misses`` early empty answers in a row: 1, 2, 4, 8, then 15 s."""
    return min(2.0 ** max(misses - 1, 0), 15.0)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


IDLE_LOAD_PER_CORE = 0.75  # a 1-minute load below this per core at the start: nothing else was busy (1.5 on 2 cores)


def machine_note(load_start: float | None, load_max: float | None, cores: int) -> str:
    """How busy the machine was, read from the 1-minute load average measured during the run, so a
    reader knows whether the latencies include waiting for a core taken by something else."""
    if load_start is None:
        return "load not measured"
    if load_start < IDLE_LOAD_PER_CORE * cores:
        return f"idle: load {load_start:.2f} at start on {cores} cores (max {load_max:.2f} during the run)"
    return f"shared: load {load_start:.2f}-{load_max:.2f} on {cores} cores; latencies include waiting for a core"


def main() -> None:
    args = parse_args()
    think = tuple(float(x) for x in args.think.split(","))
    options = procfile_web_options()
    options.update({k: v for k, v in (("workers", args.workers), ("threads", args.threads)) if v})
    pool_target = args.pool_target or (None if args.model else max(12, 2 * args.annotators))  # None: settings'
    model_store = REPO / "var" / "load-models"
    shutil.rmtree(model_store, ignore_errors=True)
    model_store.mkdir(parents=True)
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database(args) if not args.target else os.environ.get("DATABASE_URL", args.pg_url),
        "REDIS_URL": args.redis_url,
        "MODEL_STORE": str(model_store),
        "DETOX_AUTO_REFILL": "1",  # the web pays for request_refill as in production; only --model runs its jobs
        **({"POOL_TARGET": str(pool_target)} if pool_target else {}),
        "DJANGO_SETTINGS_MODULE": "detoxsite.settings",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from annotations.models import AnnotationItem, Judgement
    from core.queues import get_connection

    pool_target = pool_target or settings.POOL_TARGET
    get_connection().flushdb()
    version_id, users = seed_platform(args)
    stats: dict[str, Any] = {"items_generated": 0}
    stop = threading.Event()
    refiller = worker = None
    if args.model is None:
        from training.generation import refill_pool

        stats["items_generated"] += refill_pool(version_id, target=pool_target, generator_factory=lambda path: StubGenerator())
        refiller = threading.Thread(target=refill_loop, args=(version_id, pool_target, stop, stats), daemon=True)
        refiller.start()

    server = None
    base = args.target or f"http://{LOOPBACK}:{args.port}"
    loads: list[tuple[float, float, float]] = []
    try:
        if args.model is not None:  # first, so the model loads while gunicorn starts
            worker, worker_started = start_worker(args, env), time.monotonic()
        server = None if args.target else start_server(args, env, options)
        wait_until_up(base, users[0][1])
        if worker is not None:
            prefill = wait_for_pool(
                version_id, pool_target, worker, since=worker_started, limit=args.prefill_seconds, log=worker_log(args)
            )
            print(f"pool: {prefill['ready']}/{pool_target} ready {prefill['seconds']} s after the worker started",
                  file=sys.stderr)
        print(f"{len(users)} annotators against {base} for {args.seconds:.0f} s ...", file=sys.stderr)
        tally = Tally()
        cpu_before = server_cpu_seconds(server)
        worker_cpu_before = process_cpu_seconds(worker)
        window_start = timezone.now()
        started = time.monotonic()
        end = started + args.seconds
        crowd = [
            threading.Thread(target=annotator, args=(base, token, args.wait, think, end, tally), daemon=True)
            for _, token in users
        ]
        for t in crowd:
            t.start()
            time.sleep(min(0.05, 2.0 / len(crowd)))  # a team arrives over a second or two, not in one instant
        while any(t.is_alive() for t in crowd):
            loads.append(os.getloadavg())
            time.sleep(5)
            if time.monotonic() > end + args.wait + 60:
                tally.errors.append("annotators still running 60 s after the end")
                break
        elapsed = time.monotonic() - started
        window_end = timezone.now()
        cpu_after = server_cpu_seconds(server)
        worker_cpu_after = process_cpu_seconds(worker)
    finally:
        stop.set()
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        if worker is not None:
            worker_stop = stop_worker(worker)
    if refiller is not None:
        refiller.join(10)

    if args.model is None:
        supply = f"stub generator through training.generation.refill_pool in the bench process, pool target {pool_target}"
        real_supply: dict[str, Any] = {}
    else:
        backends = candidate_backends(version_id)
        supply = f"real generation worker (rq) on {args.model}, backend {', '.join(backends) or 'none (no candidates)'}"
        stats["items_generated"] = AnnotationItem.objects.filter(model_version_id=version_id).count()
        in_window = items_created_between(version_id, window_start, window_end)
        real_supply = {
            "pool_target": pool_target,
            "pool_batch": settings.POOL_BATCH,
            "prefill": prefill,
            "items_generated_in_window": in_window,
            "items_per_s": round(in_window / elapsed, 2),
            "worker_cpu_s": {
                "prefill": round(worker_cpu_before, 1) if worker_cpu_before is not None else None,
                "window": round(worker_cpu_after - worker_cpu_before, 1)
                if worker_cpu_before is not None and worker_cpu_after is not None else None,
            },
            "worker_stop": worker_stop,
        }

    rows = list(Judgement.objects.filter(user_id__in=[u for u, _ in users]).values_list("id", "assignment_id"))
    row_ids = [r[0] for r in rows]
    acked = tally.acknowledged
    load_start = round(loads[0][0], 2) if loads else None
    load_max = round(max(l[0] for l in loads), 2) if loads else None
    requests_total = len(tally.next_ms) + len(tally.submit_ms) + len(tally.errors)
    result = {
        "benchmark": "load_annotators",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "wait_s": args.wait,
        "think_s": list(think),
        "gunicorn": {**options, "started_here": server is not None},
        "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
        "next_item_max_waiters": settings.NEXT_ITEM_MAX_WAITERS,
        "supply": supply,
        "items_generated": stats["items_generated"],
        **real_supply,
        "requests": requests_total,
        "requests_per_s": round(requests_total / elapsed, 2),
        "next_item_ms": percentiles(tally.next_ms),
        "submit_ms": percentiles(tally.submit_ms),
        "server_cpu_ms_per_request": round(1000 * (cpu_after - cpu_before) / max(1, requests_total), 1)
        if cpu_before is not None and cpu_after is not None else None,
        "errors": len(tally.errors),
        "error_kinds": sorted({e for e in tally.errors})[:10],
        "pool_empty_answers": tally.pool_empty,
        "judgements_acknowledged": len(acked),
        "judgement_rows": len(rows),
        "acknowledged_exactly_once": sorted(acked) == sorted(row_ids) and len(set(acked)) == len(acked)
        and len({r[1] for r in rows}) == len(rows),
        "load_average_1m": {"start": load_start, "max": load_max},
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_cores": os.cpu_count(),
        "machine_note": machine_note(load_start, load_max, os.cpu_count() or 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
