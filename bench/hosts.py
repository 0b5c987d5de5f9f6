#!/usr/bin/env python3
"""Many hosts on one machine: the example blog on 1-3 "hosts" (network namespaces) behind nginx.

``sudo python bench/hosts.py [--hosts 3] [--workers 2] [--duration 5] [--connections 32]``
(``make hosts``; needs root for the namespaces, and ip, nginx, wrk and socat).

What it builds, and removes at the end whatever happens (Ctrl-C included):

- one network namespace per host, joined to this one by a veth pair: the host is
  10.231.<i>.2, this side 10.231.<i>.1; no other route, so its traffic goes only there;
- socat on 10.231.<i>.1 relaying PostgreSQL and Redis to their servers on 127.0.0.1
  (which listen on loopback only), so every host shares one database and one Redis;
- a database of its own (``transom_hosts_<id>``, dropped after) and Redis keys under
  ``transom-hosts-<id>`` (deleted after);
- in each namespace ``transom run --workers N`` of the blog plus two benchmark routes
  (``/bench/json`` and ``/bench/db``, one random post by primary key), and nginx here in
  front of them, configured as docs/deployment.md shows (without TLS).

It measures requests/s of ``/bench/json`` and ``/bench/db`` with wrk (bounded:
``--duration`` seconds, ``--connections`` connections) served directly with 1 and 2 workers,
through nginx to those 2 local workers, and through nginx to 1, 2 and 3 namespace hosts. Then
it checks across the hosts: a login holds on every host, a CSRF token one host issued is
accepted by another, the login rate limit is shared, nginx serves the static files; and
restarts one host (SIGTERM, start again) under wrk load, counting failed requests and the p99.
It prints the tables and exits 1 if a check failed or a request failed during the restart.

On a 2-core machine every process competes for the same cores: more hosts add no capacity,
so the figures show the cost of the layers (nginx, veth, the relays) and that nothing breaks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOG = ROOT / "examples" / "blog"
HOST = "blog.test"
POSTS = 200
PASSWORD = "correct horse battery staple"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = ("127.0.0.1", 6379)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

BENCH_ROUTES = '''
"""The example blog plus two benchmark routes, and the name of the host in every response."""

import os
import random

from app import Post, app
from sqlalchemy import select
from transom.db import DbSessionDep

app.default_headers["X-Served-By"] = os.environ.get("HOST_NAME", "local")
POSTS = int(os.environ.get("BENCH_POSTS", "1"))


@app.get("/bench/json", include_in_schema=False)
async def bench_json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/bench/db", include_in_schema=False)
async def bench_db(db: DbSessionDep) -> dict[str, object]:
    # One query, as TechEmpower's: the ORM's Post would join its author and her groups.
    query = select(Post.id, Post.title).where(Post.id == random.randint(1, POSTS))
    row = (await db.execute(query)).one()
    return {"id": row.id, "title": row.title}
'''


def log(message: str) -> None:
    print(f"[hosts] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def wait_http(address: str, port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answers on {address}:{port} after {seconds:.0f} s")


@dataclass
class Processes:
    """Every process started here, stopped at the end (each in its own process group)."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, command: list[str], log_file: Path, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        out = log_file.open("ab")
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,  # type: ignore[call-overload]
        )
        self.started.append(process)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            self.stop(process)


class Network:
    """The namespaces and veth pairs, created here and always removed."""

    def __init__(self, tag: str, hosts: int) -> None:
        self.tag = tag
        self.hosts = hosts
        self.made: list[int] = []

    def namespace(self, i: int) -> str:
        return f"{self.tag}h{i}"

    @staticmethod
    def host_address(i: int) -> str:
        return f"10.231.{i}.2"

    @staticmethod
    def gateway(i: int) -> str:
        return f"10.231.{i}.1"

    def __enter__(self) -> Network:
        try:
            for i in range(1, self.hosts + 1):
                ns, outer, inner = self.namespace(i), f"{self.tag}v{i}a", f"{self.tag}v{i}b"
                run("ip", "netns", "add", ns)
                self.made.append(i)
                run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
                run("ip", "link", "set", inner, "netns", ns)
                run("ip", "addr", "add", f"{self.gateway(i)}/24", "dev", outer)
                run("ip", "link", "set", outer, "up")
                inside = ["ip", "netns", "exec", ns]
                run(*inside, "ip", "addr", "add", f"{self.host_address(i)}/24", "dev", inner)
                run(*inside, "ip", "link", "set", inner, "up")
                run(*inside, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for i in self.made:
            # Deleting the namespace deletes its end of the pair, and with it the other end.
            subprocess.run(["ip", "netns", "del", self.namespace(i)], capture_output=True)
            subprocess.run(["ip", "link", "del", f"{self.tag}v{i}a"], capture_output=True)
        self.made.clear()


@dataclass
class Load:
    requests_per_s: float
    p99_ms: float
    failed: int
    requests: int


def wrk(url: str, duration: int, connections: int) -> Load:
    output = run(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",  # a slow answer is slow, not failed: the restart check counts real failures
        "-H",
        f"Host: {HOST}",
        url,
        timeout=duration + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    failed = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        failed += int(non_2xx.group(1))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        failed += sum(int(n) for n in errors.groups())
    return Load(rate, p99_ms, failed, total)


def nginx_config(folder: Path, port: int, upstreams: list[str], static: Path) -> str:
    servers = "\n".join(f"    server {address};" for address in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"  {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
{temp}
  upstream transom {{
{servers}
    keepalive 32;
  }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  server {{
    listen 127.0.0.1:{port};
    server_name {HOST};
    client_max_body_size 100m;
    location /static/ {{ alias {static}/; gzip_static on; expires max; }}
    location = /metrics {{ deny all; }}
    location / {{
      proxy_pass http://transom;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-ID $request_id;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.id = uuid.uuid4().hex[:8]
        self.tag = f"tp{os.getpid() % 100000}"
        self.work = Path(tempfile.mkdtemp(prefix=f"transom-hosts-{self.id}-"))
        self.blog = self.work / "blog"
        self.database = f"transom_hosts_{self.id}"
        self.redis_prefix = f"transom-hosts-{self.id}"
        self.processes = Processes()
        self.rows: list[tuple[str, str, Load]] = []
        self.checks: list[tuple[str, bool, str]] = []
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TRANSOM_", "DATABASE_"))
        }
        self.env |= {
            "PYTHONPATH": str(ROOT / "src"),
            "TRANSOM_SECRET_KEY": secrets.token_urlsafe(50),
            "TRANSOM_ALLOWED_HOSTS": HOST,
            "TRANSOM_ACCESS_LOG": "0",  # as in bench/: the log costs what it costs everywhere
            "TRANSOM_DATABASE_POOL_SIZE": "4",  # 3 hosts x 2 workers x 4: the server is shared
            "TRANSOM_DATABASE_MAX_OVERFLOW": "0",
            "TRANSOM_DATABASE_POOL_TIMEOUT": "30",
            "TRANSOM_CACHE_KEY_PREFIX": self.redis_prefix,
            "RATE_LIMIT_PREFIX": f"{self.redis_prefix}:rl:",
            "BENCH_POSTS": str(POSTS),
            "TRANSOM_SUPERUSER_PASSWORD": PASSWORD,
        }

    # -- set-up and clean-up ---------------------------------------------------------------------
    def prepare(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.database}"'))
        admin.dispose()
        shutil.copytree(
            BLOG,
            self.blog,
            ignore=shutil.ignore_patterns("db.sqlite3*", "__pycache__", "staticfiles"),
        )
        (self.blog / "hosts_app.py").write_text(BENCH_ROUTES)
        env = self.local_env()
        transom = [sys.executable, "-m", "transom.cli"]
        run(*transom, "db", "migrate", cwd=self.blog, env=env, timeout=300)
        run(
            *transom,
            "createsuperuser",
            "--no-input",
            "--username",
            "editor",
            "--email",
            "editor@blog.test",
            cwd=self.blog,
            env=env,
            timeout=120,
        )
        run(*transom, "collectstatic", cwd=self.blog, env=env, timeout=120)
        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO post (slug, title, body, published) VALUES (:s, :t, :b, now())"),
                [{"s": f"post-{n}", "t": f"Post {n}", "b": "x" * 200} for n in range(1, POSTS + 1)],
            )
        engine.dispose()

    def local_env(self, gateway: str = "127.0.0.1") -> dict[str, str]:
        return self.env | {
            "DATABASE_URL": f"postgresql://postgres@{gateway}:5432/{self.database}",
            "TRANSOM_CACHE_URL": f"redis://{gateway}:6379/0",
            "RATE_LIMIT_URL": f"redis://{gateway}:6379/0",
            "TRUSTED_PROXIES": gateway,
        }

    def clean(self) -> None:
        self.processes.stop_all()
        with contextlib.suppress(Exception):
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            admin.dispose()
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis(*REDIS)
            keys = list(client.scan_iter(match=self.redis_prefix + "*"))
            if keys:
                client.delete(*keys)
            client.close()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- servers ---------------------------------------------------------------------------------
    def serve(
        self,
        name: str,
        address: str,
        port: int,
        workers: int,
        env: dict[str, str],
        namespace: str | None = None,
    ) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "transom.cli",
            "run",
            "hosts_app:app",
            "--host",
            address,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        if namespace:
            command = ["ip", "netns", "exec", namespace, *command]
        process = self.processes.start(
            command, self.work / f"{name}.log", cwd=self.blog, env=env | {"HOST_NAME": name}
        )
        wait_http(address, port)
        return process

    def nginx(self, upstreams: list[str]) -> tuple[subprocess.Popen[bytes], int]:
        folder = self.work / f"nginx-{len(self.processes.started)}"
        folder.mkdir()
        port = free_port()
        (folder / "nginx.conf").write_text(
            nginx_config(folder, port, upstreams, self.blog / "staticfiles")
        )
        command = [
            "nginx",
            "-p",
            str(folder),
            "-e",
            str(folder / "error.log"),
            "-c",
            str(folder / "nginx.conf"),
        ]
        process = self.processes.start(command, folder / "stdout.log")
        wait_http("127.0.0.1", port)
        return process, port

    def measure(self, label: str, base: str) -> None:
        for endpoint in ("json", "db"):
            url = f"{base}/bench/{endpoint}"
            wrk(url, 1, self.args.connections)  # warm-up: pools, caches
            load = wrk(url, self.args.duration, self.args.connections)
            self.rows.append((label, endpoint, load))
            log(
                f"{label} /bench/{endpoint}: {load.requests_per_s:.0f} req/s, "
                f"p99 {load.p99_ms:.1f} ms, {load.failed} failed"
            )

    # -- the run ---------------------------------------------------------------------------------
    def direct(self) -> None:
        env = self.local_env()
        for workers in (1, 2):
            port = free_port()
            server = self.serve(f"local{workers}", "127.0.0.1", port, workers, env)
            self.measure(
                f"direct, {workers} worker{'s' * (workers > 1)}", f"http://127.0.0.1:{port}"
            )
            if workers == 2:
                nginx, nginx_port = self.nginx([f"127.0.0.1:{port}"])
                self.measure("nginx -> 2 local workers", f"http://127.0.0.1:{nginx_port}")
                Processes.stop(nginx)
            Processes.stop(server)

    def relays(self, net: Network) -> None:
        for i in range(1, net.hosts + 1):
            for port in (5432, 6379):
                self.processes.start(
                    [
                        "socat",
                        f"TCP-LISTEN:{port},bind={net.gateway(i)},fork,reuseaddr",
                        f"TCP:127.0.0.1:{port}",
                    ],
                    self.work / f"socat-{i}-{port}.log",
                )
            wait_http(net.gateway(i), 5432)

    def hosts(self) -> None:
        with Network(self.tag, self.args.hosts) as net:
            self.relays(net)
            servers: dict[int, subprocess.Popen[bytes]] = {}
            for i in range(1, net.hosts + 1):
                servers[i] = self.serve(
                    f"h{i}",
                    net.host_address(i),
                    8000,
                    self.args.workers,
                    self.local_env(net.gateway(i)),
                    net.namespace(i),
                )
            for count in range(1, net.hosts + 1):
                upstreams = [f"{net.host_address(i)}:8000" for i in range(1, count + 1)]
                nginx, port = self.nginx(upstreams)
                self.measure(
                    f"nginx -> {count} host{'s' * (count > 1)} x {self.args.workers} workers",
                    f"http://127.0.0.1:{port}",
                )
                if count < net.hosts:
                    Processes.stop(nginx)
            base = f"http://127.0.0.1:{port}"
            self.check_across_hosts(base, net.hosts)
            self.restart_under_load(base, net, servers)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))
        log(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    def check_across_hosts(self, base: str, hosts: int) -> None:
        import httpx

        origin = {"Origin": f"http://{HOST}"}
        with httpx.Client(base_url=base, headers={"Host": HOST}, timeout=30) as client:
            page = client.get("/auth/login")
            token = _CSRF.search(page.text)
            login = client.post(
                "/auth/login",
                data={
                    "username": "editor",
                    "password": PASSWORD,
                    "csrf_token": token.group(1) if token else "",
                },
                headers=origin,
            )
            pages = [client.get("/dashboard") for _ in range(2 * hosts)]
            served = {p.headers.get("x-served-by") for p in pages}
            self.check(
                "login holds on every host",
                login.status_code == 303
                and all(p.status_code == 200 for p in pages)
                and len(served) == hosts,
                f"login {login.status_code}, dashboard {sorted({p.status_code for p in pages})} "
                f"from {sorted(s or '?' for s in served)}",
            )
            form = client.get("/write")
            token = _CSRF.search(form.text)
            posted = client.post(
                "/write",
                data={
                    "title": "Across hosts",
                    "slug": f"across-{self.id}",
                    "body": "x",
                    "csrf_token": token.group(1) if token else "",
                },
                headers=origin,
            )
            issuer, acceptor = form.headers.get("x-served-by"), posted.headers.get("x-served-by")
            self.check(
                "a CSRF token from one host is accepted by another",
                posted.status_code == 303 and issuer != acceptor,
                f"form from {issuer}, POST {posted.status_code} on {acceptor}",
            )
            statuses, where = [], set()
            for _ in range(12):
                attempt = client.post(
                    "/auth/login",
                    data={
                        "username": f"nobody-{self.id}",
                        "password": "wrong",
                        "csrf_token": token.group(1) if token else "",
                    },
                    headers=origin,
                )
                statuses.append(attempt.status_code)
                where.add(attempt.headers.get("x-served-by"))
            first_429 = statuses.index(429) + 1 if 429 in statuses else None
            self.check(
                "the login rate limit is shared by every host",
                first_429 == 11 and len(where) == hosts,
                f"statuses {statuses} from {sorted(w or '?' for w in where)} "
                "(10 per 15 min per account and client)",
            )
            home = client.get("/")
            css = re.search(r'href="(/static/site\.[0-9a-f]+\.css)"', home.text)
            static = client.get(css.group(1)) if css else None
            self.check(
                "nginx serves the collected static files",
                static is not None
                and static.status_code == 200
                and "x-served-by" not in static.headers,
                f"{css.group(1) if css else 'no stylesheet link'}: "
                f"{static.status_code if static else '-'}",
            )

    def restart_under_load(
        self, base: str, net: Network, servers: dict[int, subprocess.Popen[bytes]]
    ) -> None:
        duration = max(8, self.args.duration * 2)
        result: list[Load] = []
        loader = threading.Thread(
            target=lambda: result.append(wrk(f"{base}/bench/db", duration, self.args.connections))
        )
        loader.start()
        time.sleep(duration / 4)
        victim = 2 if net.hosts >= 2 else 1
        log(f"SIGTERM to host h{victim} under load")
        Processes.stop(servers[victim])
        servers[victim] = self.serve(
            f"h{victim}",
            net.host_address(victim),
            8000,
            self.args.workers,
            self.local_env(net.gateway(victim)),
            net.namespace(victim),
        )
        log(f"host h{victim} is back")
        loader.join(duration + 120)
        load = result[0]
        self.rows.append((f"nginx -> {net.hosts} hosts, h{victim} restarted", "db", load))
        self.check(
            "no failed request while a host restarts",
            load.failed == 0,
            f"{load.requests} requests, {load.failed} failed, p99 {load.p99_ms:.1f} ms",
        )

    def report(self) -> None:
        print()
        print("| setup | endpoint | requests/s | p99 ms | failed |")
        print("|---|---|---|---|---|")
        for label, endpoint, load in self.rows:
            print(
                f"| {label} | /bench/{endpoint} | {load.requests_per_s:.0f} "
                f"| {load.p99_ms:.1f} | {load.failed} |"
            )
        print()
        print("| check | result | detail |")
        print("|---|---|---|")
        for name, ok, detail in self.checks:
            print(f"| {name} | {'ok' if ok else 'FAILED'} | {detail} |")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (max 30)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (max 128)")
    parser.add_argument("--skip-direct", action="store_true", help="only the namespace hosts")
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 1), 30)
    args.connections = min(max(args.connections, 1), 128)
    missing = [tool for tool in ("ip", "nginx", "wrk", "socat") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        print(f"needs root and {', '.join(missing) or 'ip, nginx, wrk, socat'}", file=sys.stderr)
        return 2
    bench = Bench(args)
    # Ctrl-C or a SIGTERM still removes the namespaces, the database and the processes.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        log(f"run {bench.id}: preparing the blog, database {bench.database}")
        bench.prepare()
        if not args.skip_direct:
            bench.direct()
        bench.hosts()
    finally:
        bench.clean()
    bench.report()
    return 0 if bench.checks and all(ok for _, ok, _ in bench.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
