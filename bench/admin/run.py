"""Admin benchmark: Transom's admin beside Django's, on the same 1,000,000-row PostgreSQL table.

Measures the median latency of four pages, logged in as a superuser, one request at a time:
the list's first page, a middle page (row 500,000), a search, and an edit page. Each admin
runs in one process (Django: gunicorn's sync worker; Transom: uvicorn), both with
persistent database connections. Results go to ``bench/results/admin.md`` and ``.json``.

    python bench/admin/run.py                  # 40 timed requests per page
    BENCH_ADMIN_REQUESTS=100 python bench/admin/run.py
    BENCH_ADMIN_ENGINE=mariadb python bench/admin/run.py   # the same on MariaDB
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from common import DATABASE_URL, ENGINE, PASSWORD, ROWS, USERNAME  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_ADMIN_REQUESTS", "40"))
WARMUP = 5
HOST = "127.0.0.1"
MIDDLE = ROWS // 100 // 2  # the page holding row 500,000 at 100 rows a page
SEARCH = "Item 4242"
EDIT_ID = ROWS // 2
PAGES = {
    "django": {
        "list, first page": "/admin/benchapp/benchitem/",
        "list, middle page": f"/admin/benchapp/benchitem/?p={MIDDLE}",
        "list, search": f"/admin/benchapp/benchitem/?q={SEARCH.replace(' ', '+')}",
        "edit page": f"/admin/benchapp/benchitem/{EDIT_ID}/change/",
    },
    "transom": {
        "list, first page": "/admin/transom_app/benchitem",
        "list, middle page": f"/admin/transom_app/benchitem?p={MIDDLE}",
        "list, search": f"/admin/transom_app/benchitem?q={SEARCH.replace(' ', '+')}",
        "edit page": f"/admin/transom_app/benchitem/{EDIT_ID}/change",
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    variables = dict(os.environ)
    variables["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT / "src")])
    variables["DJANGO_SETTINGS_MODULE"] = "djangosite.settings"
    variables["BENCH_ADMIN_DATABASE_URL"] = DATABASE_URL
    variables["BENCH_ADMIN_ENGINE"] = ENGINE
    variables["TRANSOM_ACCESS_LOG"] = "0"  # Django's side writes no access log either
    return variables


def prepare() -> None:
    subprocess.run([sys.executable, str(HERE / "setup_data.py")], check=True, env=env())
    manage = [sys.executable, "-m", "django"]
    subprocess.run([*manage, "migrate", "-v", "0"], check=True, env=env(), cwd=HERE)
    make_django_user = (
        "import django; django.setup()\n"
        "from django.contrib.auth.models import User\n"
        f"if not User.objects.filter(username={USERNAME!r}).exists():\n"
        f"    User.objects.create_superuser({USERNAME!r}, 'b@example.com', {PASSWORD!r})\n"
    )
    subprocess.run([sys.executable, "-c", make_django_user], check=True, env=env(), cwd=HERE)
    make_transom_user = (
        "from sqlalchemy import create_engine, select\n"
        "from sqlalchemy.orm import Session\n"
        "from common import DATABASE_URL\n"
        "from setup_data import sync_url\n"
        "from transom_app import Base, BenchUser\n"
        "from transom.admin.history import LogEntry\n"
        "engine = create_engine(sync_url(DATABASE_URL))\n"
        "Base.metadata.tables['transom_bench_user'].create(engine, checkfirst=True)\n"
        "LogEntry.metadata.tables['transom_admin_log'].create(engine, checkfirst=True)\n"
        "with Session(engine) as s:\n"
        f"    if s.scalar(select(BenchUser).where(BenchUser.username == {USERNAME!r})) is None:\n"
        f"        u = BenchUser(username={USERNAME!r}); u.set_password({PASSWORD!r}); s.add(u)\n"
        "        s.commit()\n"
    )
    subprocess.run([sys.executable, "-c", make_transom_user], check=True, env=env(), cwd=HERE)


@contextmanager
def serve(kind: str) -> Iterator[str]:
    port = free_port()
    if kind == "django":
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--log-level",
            "warning",
            "djangosite.wsgi:application",
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "transom_app:app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    process = subprocess.Popen(command, cwd=HERE, env=env())
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/admin/login/" if kind == "django" else base + "/admin/login")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{kind} did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)


def login(kind: str, client: httpx.Client) -> None:
    if kind == "django":
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        data = {"csrfmiddlewaretoken": token.group(1) if token else "", "next": "/admin/"}
        url = "/admin/login/?next=/admin/"
    else:
        page = client.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        data = {"csrf_token": token.group(1) if token else ""}
        url = "/admin/login"
    response = client.post(url, data={**data, "username": USERNAME, "password": PASSWORD})
    if response.status_code not in (302, 303):
        raise RuntimeError(f"{kind} login failed: {response.status_code}")


def measure(kind: str, base: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        login(kind, client)
        for name, url in PAGES[kind].items():
            timings = []
            for i in range(WARMUP + REQUESTS):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{kind} {url}: {response.status_code}")
                if i >= WARMUP:
                    timings.append(elapsed)
            timings.sort()
            results[name] = {
                "median_ms": statistics.median(timings),
                "p90_ms": timings[int(len(timings) * 0.9) - 1],
                "bytes": len(response.content),
            }
            print(f"  {kind:8} {name:18} {results[name]['median_ms']:8.1f} ms", flush=True)
    return results


def main() -> None:
    prepare()
    results = {}
    for kind in ("django", "transom"):
        with serve(kind) as base:
            results[kind] = measure(kind, base)
    lines = [
        f"# Admin benchmark ({ROWS:,} rows, {ENGINE}, {REQUESTS} requests per page)",
        "",
        "| page | Django median (ms) | Transom median (ms) | Transom / Django |",
        "|---|---:|---:|---:|",
    ]
    for name in PAGES["django"]:
        django = results["django"][name]["median_ms"]
        transom = results["transom"][name]["median_ms"]
        lines.append(f"| {name} | {django:.1f} | {transom:.1f} | {transom / django:.2f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if ENGINE == "postgresql" else f"-{ENGINE}"
    (out / f"admin{suffix}.md").write_text(report)
    (out / f"admin{suffix}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
