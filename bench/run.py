#!/usr/bin/env python3
"""Benchmark Transom against raw ASGI and its peers: ``python bench/run.py [--quick]``.

Each framework serves the equal-work apps in ``bench/apps`` with ONE worker process on
127.0.0.1 (a free port), and ``wrk`` (one thread) loads it for a bounded time. Frameworks are
interleaved round-robin over ``--rounds`` rounds and the best round counts (load on a shared
machine only ever slows a run down, so the maximum is the least noisy estimate). Ratios
compare frameworks measured in the same run: ``vs raw`` divides by the raw-ASGI app on the same
server, so a framework's own cost is separated from its server's.

Every endpoint is checked (status and body) before it is measured, and a run that answered
with non-2xx responses is flagged: a fast error is not a fast framework.

Output: a Markdown report on stdout and in ``bench/results/latest.md`` (plus ``latest.json``
with every sample, and server logs in ``bench/results/logs/``).

Environment: ``BENCH_DURATION`` (s, default 5), ``BENCH_WARMUP`` (s, 1), ``BENCH_ROUNDS`` (2),
``BENCH_CONNECTIONS`` (64); the command-line flags win over them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
WRK_SCRIPTS = BENCH / "wrk"
HOST = "127.0.0.1"  # never anything else

TYPED_BODY = '{"name":"Widget","price":9.5,"tags":["a","b"]}'
START_TIMEOUT = 60.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


# -- what is measured -------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    name: str
    app: str  # attribute of the app module that serves it
    method: str
    path: str
    expect_type: str
    expect_body: bytes
    script: str | None = None  # wrk Lua script in bench/wrk
    script_args: tuple[str, ...] = ()
    body: str | None = None
    note: str = ""
    suite: str = "core"  # "tfb": served by the framework's TechEmpower database app
    core_app: bool = False  # a "tfb" endpoint that the framework's core app serves
    check: Callable[[bytes], str | None] | None = None  # for answers that vary (random rows)
    only: tuple[str, ...] = ()  # the frameworks that serve it (empty: all)

    def served_by(self, framework: str) -> bool:
        return not self.only or framework in self.only


def _check_worlds(count: int | None) -> Callable[[bytes], str | None]:
    """A JSON World object (count None) or a list of ``count`` of them."""

    def check(body: bytes) -> str | None:
        try:
            data = json.loads(body)
        except ValueError:
            return "not JSON"
        rows = [data] if count is None else data
        if count is not None and (not isinstance(data, list) or len(data) != count):
            return f"expected a list of {count} rows"
        for row in rows:
            if not (
                isinstance(row, dict)
                and set(row) == {"id", "randomNumber"}
                and all(isinstance(v, int) and 1 <= v <= 10000 for v in row.values())
            ):
                return f"bad row {row!r}"
        return None

    return check


FORTUNE_IDS = [11, 4, 5, 2, 8, 0, 3, 7, 10, 6, 9, 1, 12]


def _check_fortunes(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace")
    ids = [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", text)]
    if ids != FORTUNE_IDS:
        return f"fortune ids {ids}"
    for needle in ("&lt;script&gt;", "フレームワークのベンチマーク", "Additional fortune added"):
        if needle not in text:
            return f"missing {needle!r}"
    return None


TFB_QUERIES = 20
ENDPOINTS = [
    Endpoint("plaintext", "app", "GET", "/plaintext", "text/plain", b"Hello, World!"),
    Endpoint(
        "plaintext-p16",
        "app",
        "GET",
        "/plaintext",
        "text/plain",
        b"Hello, World!",
        script="pipeline.lua",
        script_args=("16",),
        note="HTTP/1.1 pipelining, depth 16",
    ),
    Endpoint("json", "app", "GET", "/json", "application/json", b'{"message":"Hello, World!"}'),
    Endpoint(
        "html", "app", "GET", "/html", "text/html",
        b"<!doctype html><title>Hello</title><p>Hello, World!</p>",
        only=("raw", "transom", "transom-secure", "starlette"),
        note="a str returned as text/html (with Security: the response with a CSP nonce)",
    ),
    Endpoint(
        "typed",
        "app",
        "POST",
        "/typed/42?q=hello&limit=3",
        "application/json",
        b'{"item_id":42,"q":"hello","limit":3,"name":"Widget","total":28.5}',
        script="post_json.lua",
        script_args=(TYPED_BODY,),
        body=TYPED_BODY,
        note="int path param, str+int query params, Pydantic JSON body",
    ),
    Endpoint(
        "routes-10",
        "routes_10",
        "GET",
        "/r9/42",
        "application/json",
        b'{"route":9,"id":42}',
        note="last of 10 routes /r{i}/{id:int}",
    ),
    Endpoint(
        "routes-1000",
        "routes_1000",
        "GET",
        "/r999/42",
        "application/json",
        b'{"route":999,"id":42}',
        note="last of 1,000 routes /r{i}/{id:int}",
    ),
    # TechEmpower's two tests without a database, with its rules (plaintext pipelined 16 deep,
    # JSON serialising a new object per request), in the tfb suite so that `make bench-tfb`
    # runs all six; the frameworks' core apps serve them (the same handlers as `json` above).
    Endpoint(
        "tfb-plaintext", "app", "GET", "/plaintext", "text/plain", b"Hello, World!",
        script="pipeline.lua", script_args=("16",), suite="tfb", core_app=True,
        note="TechEmpower plaintext: pipelined, depth 16",
    ),
    Endpoint(
        "tfb-json", "app", "GET", "/json", "application/json", b'{"message":"Hello, World!"}',
        suite="tfb", core_app=True, note="TechEmpower JSON serialization",
    ),
    Endpoint(
        "db", "app", "GET", "/db", "application/json", b"", suite="tfb",
        check=_check_worlds(None), note="TechEmpower: one random World row",
    ),
    Endpoint(
        "queries", "app", "GET", f"/queries?queries={TFB_QUERIES}", "application/json", b"",
        suite="tfb", check=_check_worlds(TFB_QUERIES), note=f"{TFB_QUERIES} SELECTs",
    ),
    Endpoint(
        "fortunes", "app", "GET", "/fortunes", "text/html", b"", suite="tfb",
        check=_check_fortunes, note="12 rows + 1, sorted, escaped template",
    ),
    Endpoint(
        "updates", "app", "GET", f"/updates?queries={TFB_QUERIES}", "application/json", b"",
        suite="tfb", check=_check_worlds(TFB_QUERIES),
        note=f"{TFB_QUERIES} SELECTs + UPDATE, committed",
    ),
]  # fmt: skip
ENDPOINTS_BY_NAME = {e.name: e for e in ENDPOINTS}


@dataclass(frozen=True)
class Framework:
    name: str
    module: str
    dist: str | None  # distribution whose version is reported (None: no framework)
    interface: str  # "asgi" or "wsgi"
    tfb_module: str | None = None  # its TechEmpower database app, if it has one


FRAMEWORKS = {
    f.name: f
    for f in [
        Framework("raw", "bench.apps.raw_asgi", None, "asgi", "bench.apps.tfb_raw"),
        Framework("transom", "bench.apps.transom_app", "transom", "asgi", "bench.apps.tfb_transom"),
        Framework("transom-secure", "bench.apps.transom_secure_app", "transom", "asgi"),
        Framework("starlette", "bench.apps.starlette_app", "starlette", "asgi"),
        Framework("fastapi", "bench.apps.fastapi_app", "fastapi", "asgi", "bench.apps.tfb_fastapi"),
        Framework("litestar", "bench.apps.litestar_app", "litestar", "asgi"),
        Framework("flask", "bench.apps.flask_app", "flask", "wsgi"),
        Framework("django", "bench.apps.django_app", "django", "wsgi", "bench.apps.tfb_django"),
    ]
}

# (framework, server): raw and Transom on both ASGI servers so that the ratio compares on the
# same server; each peer on the server its users deploy with.
DEFAULT_TARGETS = [
    ("raw", "granian"),
    ("raw", "uvicorn"),
    ("transom", "granian"),
    ("transom", "uvicorn"),
    ("transom-secure", "granian"),
    ("transom-secure", "uvicorn"),
    ("starlette", "uvicorn"),
    ("fastapi", "uvicorn"),
    ("litestar", "uvicorn"),
    ("flask", "gunicorn"),
    ("django", "gunicorn"),
]
EXTRA_TARGETS = [("starlette", "granian"), ("fastapi", "granian"), ("litestar", "granian")]
SERVERS = ("granian", "uvicorn", "gunicorn")


def server_command(module: str, server: str, app: str, port: int) -> list[str]:
    """The command line that serves ``module:app`` with one worker on HOST:port."""
    target = f"{module}:{app}"
    python = sys.executable
    if server == "granian":
        # Granian picks uvloop itself (--loop auto); its access log is off by default.
        return [
            python, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", str(port),
            "--workers", "1", "--log-level", "warning", target,
        ]  # fmt: skip
    if server == "uvicorn":
        # Uvicorn picks uvloop and httptools itself (--loop auto --http auto); its access log
        # is on by default and is turned off to match the other servers.
        return [
            python, "-m", "uvicorn", target, "--host", HOST, "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    if server == "gunicorn":
        return [
            python, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
            "--bind", f"{HOST}:{port}", "--log-level", "warning", target,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def printable(command: Sequence[str]) -> str:
    """A command line as it reads in the report: ``python`` for the venv's, ``$PORT``."""
    words = ["python" if word == sys.executable else word for word in command]
    text = shlex.join(words)
    return re.sub(r"(--port |127\.0\.0\.1:|--bind 127\.0\.0\.1:)\d+", r"\g<1>$PORT", text)


# -- child processes --------------------------------------------------------------------------
_children: dict[int, subprocess.Popen[bytes]] = {}


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End a child and everything it started (its own process group), within STOP_TIMEOUT."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    # Workers of a server that already exited may linger in its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)
    _children.pop(process.pid, None)


def kill_all_children() -> None:
    for process in list(_children.values()):
        _kill(process)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # stop like ^C: kill the servers, write the partial report


def spawn(command: Sequence[str], log: IO[bytes], env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed as a whole, no terminal ^C
    )
    _children[process.pid] = process
    return process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "src")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["TRANSOM_SECRET_KEY"] = "bench"
    # Every server here runs without its access log; Transom writes its own unless told not to.
    env["TRANSOM_ACCESS_LOG"] = "0"
    env.pop("TRANSOM_DEBUG", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def fetch(port: int, endpoint: Endpoint, timeout: float = 5.0) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if endpoint.body is not None else {}
        conn.request(endpoint.method, endpoint.path, body=endpoint.body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("content-type", ""), response.read()
    finally:
        conn.close()


class ServerFailed(Exception):
    pass


@contextlib.contextmanager
def serving(
    command: list[str], port: int, probe: Endpoint, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run the server until the block ends (``as`` gives its process); ready once it answers
    any HTTP response."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {printable(command)}\n".encode())
        log.flush()
        process = spawn(command, log, server_env())
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    raise ServerFailed(f"exited with {process.returncode}; see {log_path}")
                try:
                    fetch(port, probe, timeout=2.0)
                    break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerFailed(f"no answer within {START_TIMEOUT:.0f} s; see {log_path}")
                time.sleep(0.1)
            yield process
        finally:
            _kill(process)


# -- wrk --------------------------------------------------------------------------------------
@dataclass
class Sample:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non2xx: int
    socket_errors: int
    requests: int
    load: float = 0.0  # 1-minute load average right after the measurement


def wrk_command(endpoint: Endpoint, port: int, seconds: int, connections: int) -> list[str]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    if endpoint.script:
        command += ["-s", str((WRK_SCRIPTS / endpoint.script).relative_to(ROOT))]
    command.append(f"http://{HOST}:{port}{endpoint.path}")
    if endpoint.script_args:
        command += ["--", *endpoint.script_args]
    return command


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _latency_ms(text: str, percent: str) -> float | None:
    match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return float(match[1]) * _UNITS_MS[match[2]] if match else None


def parse_wrk(text: str) -> Sample:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{text}")
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return Sample(
        rps=float(rps[1]),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        non2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        requests=int(total[1]) if total else 0,
    )


def run_wrk(command: list[str], seconds: int) -> str:
    log = RESULTS / "logs" / "wrk.log"
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _children[process.pid] = process
    try:
        out, _ = process.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        _children.pop(process.pid, None)
    text = out.decode(errors="replace")
    with log.open("a") as fh:
        fh.write(f"$ {shlex.join(command)}\n{text}\n")
    return text


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Config:
    duration: int
    warmup: int
    rounds: int
    connections: int
    targets: list[tuple[str, str]]
    endpoints: list[Endpoint]


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # "fw/server/endpoint"
    errors: dict[str, str] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)  # "fw/server" -> command
    wrk_commands: dict[str, str] = field(default_factory=dict)  # endpoint -> command
    started: float = field(default_factory=time.time)
    finished: float | None = None
    interrupted: bool = False


def check_answer(endpoint: Endpoint, answer: tuple[int, str, bytes]) -> str | None:
    status, content_type, body = answer
    if status != 200:
        return f"wrong answer: {status} {body[:120]!r}"
    if endpoint.check is not None:
        problem = endpoint.check(body)
        if problem:
            return f"wrong answer: {problem}: {body[:120]!r}"
    # Flask ends JSON with a newline; otherwise every framework must send the same bytes.
    elif body.rstrip(b"\n") != endpoint.expect_body:
        return f"wrong answer: {status} {body[:120]!r}"
    if not content_type.startswith(endpoint.expect_type):
        return f"wrong content-type: {content_type!r}"
    return None


def vacuum_worlds() -> None:
    """Clear the dead rows the updates test leaves in ``World``.

    Every updates run rewrites thousands of rows; left to autovacuum, the table doubles and
    triples in size over a run, so later measurements (whichever framework they belong to)
    read a bloated table. Each measurement starts from a vacuumed one instead.
    """
    import psycopg

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.apps.tfb_common import DATABASE_URL

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE world")


def measure(
    cfg: Config, results: Results, framework: Framework, server: str, round_no: int
) -> None:
    apps: dict[tuple[str, str], list[Endpoint]] = {}
    for endpoint in cfg.endpoints:
        database_test = endpoint.suite == "tfb" and not endpoint.core_app
        module = framework.tfb_module if database_test else framework.module
        if module is not None and endpoint.served_by(framework.name):
            apps.setdefault((module, endpoint.app), []).append(endpoint)
    key = f"{framework.name}/{server}"
    for (module, app), endpoints in apps.items():
        port = free_port()
        command = server_command(module, server, app, port)
        # One line per framework/server: {app} is app, routes_10 or routes_1000.
        results.commands.setdefault(
            key if module == framework.module else f"{key} (tfb)",
            printable(command).replace(f":{app}", ":{app}"),
        )
        log_path = RESULTS / "logs" / f"{module.rsplit('.', 1)[1]}-{server}-{app}.log"
        try:
            with serving(command, port, endpoints[0], log_path):
                for endpoint in endpoints:
                    sample_key = f"{key}/{endpoint.name}"
                    problem = check_answer(endpoint, fetch(port, endpoint))
                    if problem:
                        results.errors[sample_key] = problem
                        print(f"    {sample_key}: {problem}", file=sys.stderr)
                        continue
                    if endpoint.suite == "tfb" and not endpoint.core_app:
                        vacuum_worlds()
                    if cfg.warmup > 0:
                        run_wrk(
                            wrk_command(endpoint, port, cfg.warmup, cfg.connections), cfg.warmup
                        )
                    command_wrk = wrk_command(endpoint, port, cfg.duration, cfg.connections)
                    results.wrk_commands.setdefault(
                        endpoint.name, printable(command_wrk).replace(str(port), "$PORT")
                    )
                    sample = parse_wrk(run_wrk(command_wrk, cfg.duration))
                    sample.load = os.getloadavg()[0]
                    results.samples.setdefault(sample_key, []).append(sample)
                    flag = ""
                    if sample.non2xx or sample.socket_errors:
                        flag = f"  (non-2xx {sample.non2xx}, socket errors {sample.socket_errors})"
                    print(
                        f"  round {round_no + 1}  {sample_key:<32} "
                        f"{sample.rps:>12,.0f} req/s{flag}",
                        file=sys.stderr,
                        flush=True,
                    )
        except (ServerFailed, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            for endpoint in endpoints:
                results.errors.setdefault(f"{key}/{endpoint.name}", f"{type(exc).__name__}: {exc}")
            print(f"    {key}:{app} failed: {exc}", file=sys.stderr)


# -- report -----------------------------------------------------------------------------------
def best(samples: list[Sample]) -> Sample:
    return max(samples, key=lambda s: s.rps)


def _rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}x"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def wrk_version() -> str:
    try:
        out = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(r"wrk (\S+)", out.stdout + out.stderr)
    return match[1] if match else "?"


def report(cfg: Config, results: Results) -> str:
    names = [e.name for e in cfg.endpoints]
    rows = [f"{f}/{s}" for f, s in cfg.targets]

    def value(row: str, endpoint: str) -> float | None:
        samples = results.samples.get(f"{row}/{endpoint}")
        return best(samples).rps if samples else None

    def fastapi_row(row: str) -> str:
        same = f"fastapi/{row.split('/')[1]}"
        return same if same in rows else "fastapi/uvicorn"

    def header(first: list[str], extra: list[str]) -> list[str]:
        cols = first + extra
        return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    out: list[str] = []
    when = datetime.datetime.fromtimestamp(results.started).strftime("%Y-%m-%d %H:%M")
    elapsed = (results.finished or time.time()) - results.started
    out.append(f"# Transom benchmark — {when}")
    out.append("")
    if results.interrupted:
        out.append("**Interrupted: partial results.**")
        out.append("")
    versions = ", ".join(
        f"{d} {version(d)}"
        for d in [
            "transom", "starlette", "fastapi", "litestar", "flask", "django",
            "granian", "uvicorn", "gunicorn", "uvloop", "httptools", "pydantic", "orjson",
            "sqlalchemy", "asyncpg",
        ]
    )  # fmt: skip
    out += [
        f"- Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average at start "
        f"{os.getloadavg()[0]:.2f}",
        f"- Load: wrk {wrk_version()}, 1 thread, {cfg.connections} connections, "
        f"{cfg.duration} s per measurement after a {cfg.warmup} s warm-up; one server worker; "
        f"{cfg.rounds} round{'s' if cfg.rounds > 1 else ''} interleaved round-robin, "
        "**best round** reported "
        f"(total {elapsed / 60:.1f} min)",
        f"- Versions: {versions}",
        "- Endpoints: "
        + "; ".join(f"`{e.name}` = {e.method} {e.path}" + (f" ({e.note})" if e.note else "")
                    for e in cfg.endpoints),
        "",
        "## Requests per second",
        "",
    ]  # fmt: skip
    routes_ratio = "routes-10" in names and "routes-1000" in names
    out += header(["framework", "server"], names + (["1000 ÷ 10 routes"] if routes_ratio else []))
    for row in rows:
        fw, server = row.split("/")
        cells = [_rps(value(row, n)) + (" ⚠" if _flagged(results, row, n) else "") for n in names]
        if routes_ratio:
            cells.append(_ratio(value(row, "routes-1000"), value(row, "routes-10")))
        out.append(f"| {fw} | {server} | " + " | ".join(cells) + " |")
    out += ["", "## Ratio to raw ASGI on the same server (1.00x = no framework cost)", ""]
    out += header(["framework", "server"], names)
    for row in rows:
        fw, server = row.split("/")
        raw = f"raw/{server}"
        if raw not in rows:
            continue
        cells = [_ratio(value(row, n), value(raw, n)) for n in names]
        out.append(f"| {fw} | {server} | " + " | ".join(cells) + " |")
    if "fastapi/uvicorn" in rows or any(r.startswith("fastapi/") for r in rows):
        out += [
            "",
            "## Ratio to FastAPI (on the same server when measured there, else on uvicorn)",
            "",
        ]
        out += header(["framework", "server"], names)
        for row in rows:
            fw, server = row.split("/")
            ref = fastapi_row(row)
            cells = [_ratio(value(row, n), value(ref, n)) for n in names]
            out.append(f"| {fw} | {server} | " + " | ".join(cells) + " |")
    out += ["", "## Details", ""]
    details = ["endpoint", "framework/server", "best req/s", "all rounds", "p50 ms", "p99 ms"]
    out += header([*details, "load", "errors"], [])
    for name in names:
        for row in rows:
            key = f"{row}/{name}"
            samples = results.samples.get(key)
            if not samples:
                error = results.errors.get(key, "not run")
                out.append(f"| {name} | {row} | — | — | — | — | — | {error} |")
                continue
            top = best(samples)
            spread = " / ".join(f"{s.rps:,.0f}" for s in samples)
            errors = ", ".join(
                part
                for part in [
                    f"non-2xx {sum(s.non2xx for s in samples)}"
                    if any(s.non2xx for s in samples)
                    else "",
                    f"socket {sum(s.socket_errors for s in samples)}"
                    if any(s.socket_errors for s in samples)
                    else "",
                ]
                if part
            )
            out.append(
                f"| {name} | {row} | {top.rps:,.0f} | {spread} | {_ms(top.p50_ms)} "
                f"| {_ms(top.p99_ms)} | {top.load:.1f} | {errors} |"
            )
    out += ["", "## Commands", ""]
    out += [f"- `{name}`: `{command}`" for name, command in results.commands.items()]
    out += [f"- wrk `{name}`: `{cmd}`" for name, cmd in results.wrk_commands.items()]
    out += [
        "",
        "⚠ = the measurement saw non-2xx responses or socket errors (see Details). "
        "Gunicorn's sync worker answers `Connection: close`, so wrk reconnects for every "
        "request and only the first of each pipelined batch is answered. wrk cannot time "
        "pipelined requests, so their latency is left blank.",
        "",
    ]
    return "\n".join(out)


def _ms(value: float | None) -> str:
    return "—" if not value else f"{value:.2f}"


def _flagged(results: Results, row: str, endpoint: str) -> bool:
    samples = results.samples.get(f"{row}/{endpoint}", [])
    return any(s.non2xx or s.socket_errors for s in samples)


# -- command line -----------------------------------------------------------------------------
def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


def _names(text: str | None, known: Sequence[str], what: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def parse_args(argv: Sequence[str] | None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", help="frameworks, comma-separated: " + ",".join(FRAMEWORKS))
    parser.add_argument("--servers", help="servers, comma-separated: " + ",".join(SERVERS))
    parser.add_argument(
        "--endpoints", help="endpoints, comma-separated: " + ",".join(ENDPOINTS_BY_NAME)
    )
    parser.add_argument(
        "--all-servers",
        action="store_true",
        help="also run Starlette, FastAPI and Litestar on granian",
    )
    parser.add_argument(
        "--suite",
        choices=["core", "tfb", "all"],
        default="core",
        help="core endpoints (default), the TechEmpower database tests (needs "
        "bench/tfb/setup_postgres.sh), or both; --endpoints overrides",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 s, 1 round")
    parser.add_argument("--duration", type=int, help="seconds per measurement (BENCH_DURATION)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds (BENCH_WARMUP)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (BENCH_ROUNDS)")
    parser.add_argument("--connections", type=int, help="wrk connections (BENCH_CONNECTIONS)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args(argv)

    duration = _env_int("BENCH_DURATION", 5)
    warmup = _env_int("BENCH_WARMUP", 1)
    rounds = _env_int("BENCH_ROUNDS", 2)
    if args.quick:
        duration, rounds = 1, 1
    duration = args.duration if args.duration is not None else duration
    warmup = args.warmup if args.warmup is not None else warmup
    rounds = args.rounds if args.rounds is not None else rounds
    connections = args.connections or _env_int("BENCH_CONNECTIONS", 64)
    if not (1 <= duration <= 600 and 0 <= warmup <= 60 and 1 <= rounds <= 20):
        raise SystemExit("duration must be 1..600 s, warm-up 0..60 s and rounds 1..20")

    only = _names(args.only, list(FRAMEWORKS), "framework")
    servers = _names(args.servers, SERVERS, "server")
    endpoint_names = _names(args.endpoints, list(ENDPOINTS_BY_NAME), "endpoint")
    targets = DEFAULT_TARGETS + (EXTRA_TARGETS if args.all_servers else [])
    targets = [
        (f, s)
        for f, s in targets
        if (only is None or f in only) and (servers is None or s in servers)
    ]
    if endpoint_names is not None:
        endpoints = [e for e in ENDPOINTS if e.name in endpoint_names]
    else:
        endpoints = [e for e in ENDPOINTS if args.suite in ("all", e.suite)]
    if endpoints and all(e.suite == "tfb" for e in endpoints):
        targets = [(f, s) for f, s in targets if FRAMEWORKS[f].tfb_module is not None]
    return Config(duration, warmup, rounds, connections, targets, endpoints), args


def installed(cfg: Config) -> list[tuple[str, str]]:
    """Drop targets whose framework or server is not installed (saying so)."""
    kept = []
    for fw, server in cfg.targets:
        needed = [server] + ([FRAMEWORKS[fw].dist or ""] if FRAMEWORKS[fw].dist else [])
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if fw.startswith("transom") and not missing:
            # A namespace package (src/transom without __init__) is not Transom yet.
            spec = importlib.util.find_spec("transom")
            if spec is None or spec.origin in (None, "namespace"):
                missing.append("transom")
        if missing:
            print(f"skipping {fw}/{server}: {', '.join(missing)} not installed", file=sys.stderr)
        else:
            kept.append((fw, server))
    return kept


def database_ready() -> bool:
    """The TechEmpower database answers on this machine (never anywhere else)."""
    from urllib.parse import urlsplit

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://127.0.0.1:5432/hello_world")
    parts = urlsplit(url)
    host, port = parts.hostname or HOST, parts.port or 5432
    if host not in (HOST, "localhost", "::1"):
        print(f"BENCH_DATABASE_URL must point at this machine, not {host}", file=sys.stderr)
        return False
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        print(
            f"skipping the database tests: nothing answers on {host}:{port} "
            "(run bench/tfb/setup_postgres.sh against a local PostgreSQL)",
            file=sys.stderr,
        )
        return False


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (`make bench` does it)", file=sys.stderr)
        return 2
    sys.path[:0] = [str(ROOT / "src")]
    cfg.targets = installed(cfg)
    if any(e.suite == "tfb" for e in cfg.endpoints) and not database_ready():
        cfg.endpoints = [e for e in cfg.endpoints if e.suite != "tfb"]
    if not cfg.targets or not cfg.endpoints:
        print("nothing to run", file=sys.stderr)
        return 2
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    (RESULTS / "logs" / "wrk.log").write_text("")
    for log in (RESULTS / "logs").glob("*-*.log"):
        log.unlink()
    runs = sum(
        1
        for fw, _ in cfg.targets
        for e in cfg.endpoints
        if (e.suite != "tfb" or e.core_app or FRAMEWORKS[fw].tfb_module is not None)
        and e.served_by(fw)
    )
    print(
        f"{runs} measurements x {cfg.rounds} round(s): about "
        f"{runs * cfg.rounds * (cfg.duration + cfg.warmup) / 60:.1f} min of load plus start-ups",
        file=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with ^C ignored
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    results = Results()
    try:
        results = run_into(cfg, results)
    except KeyboardInterrupt:
        results.interrupted = True
        print("\ninterrupted: stopping servers, writing partial results", file=sys.stderr)
    finally:
        kill_all_children()
    results.finished = time.time()
    text = report(cfg, results)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {
        "config": {**asdict(cfg), "endpoints": [e.name for e in cfg.endpoints]},
        "samples": {k: [asdict(s) for s in v] for k, v in results.samples.items()},
        "errors": results.errors,
        "commands": results.commands,
        "wrk_commands": results.wrk_commands,
    }
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=2))
    print(f"\nwritten to {args.output}", file=sys.stderr)
    if results.interrupted:
        return 130
    return 1 if results.errors else 0


def run_into(cfg: Config, results: Results) -> Results:
    targets = [(FRAMEWORKS[f], s) for f, s in cfg.targets]
    for round_no in range(cfg.rounds):
        shift = round_no % len(targets)  # rotate so no framework always runs first or last
        for framework, server in targets[shift:] + targets[:shift]:
            measure(cfg, results, framework, server, round_no)
    return results


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        kill_all_children()
