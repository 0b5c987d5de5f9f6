"""`transom check --deploy`: each problem named with its fix, exit 1 on errors, 0 when clean;
the database pool is weighed against the real PostgreSQL server's connection limit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import create_engine, text

STRONG_KEY = "hV3tq8Xz1LmP0sRw9YbN4cKd7FgJ2uTe6AiO5yQxWvZr-_HkMnBpCjDlEsGo"

BAD = textwrap.dedent(
    """
    from transom import App, Settings
    from transom.security import Security, SecurityConfig
    from transom.security.headers import HeadersConfig

    app = App(Settings(debug=True, secret_key="change-me", allowed_hosts=["*"]))
    no_hsts = HeadersConfig(hsts_max_age=0)
    Security(app, SecurityConfig(trusted_proxies=["0.0.0.0/0"], headers=no_hsts))

    @app.get("/")
    def home():
        return "home"
    """
)

GOOD = textwrap.dedent(
    """
    import os

    from sqlalchemy import MetaData

    from transom import App, Settings
    from transom.db import Database, DatabaseConfig
    from transom.security import Security, SecurityConfig
    from transom.security.backends.redis import RedisRateLimitBackend

    app = App(Settings(allowed_hosts=["example.com"]))
    Security(app, SecurityConfig(
        trusted_proxies=["127.0.0.1"],
        rate_limit_backend=RedisRateLimitBackend("redis://127.0.0.1:6379/0"),
    ))
    config = DatabaseConfig(url=os.environ["CHECK_DB"], pool_size=int(os.environ["CHECK_POOL"]),
                            max_overflow=0)
    app.install(Database(config, metadata=MetaData()))

    @app.get("/")
    def home():
        return "home"
    """
)


def _run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRANSOM_")}
    return subprocess.run(
        [sys.executable, "-m", "transom.cli", "check", *args],
        cwd=project,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_problem_is_named_with_its_fix(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(BAD)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "site.css").write_text("body{}")
    result = _run(tmp_path, "--deploy", "--workers", "2")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for problem in (
        "ERROR deploy.debug",
        "ERROR deploy.secret_key.weak",
        "ERROR deploy.allowed_hosts.any",
        "ERROR deploy.proxies.everyone",
        "ERROR deploy.static.not_collected",
        "WARNING deploy.hsts.off",
        "WARNING deploy.ratelimit.memory",
    ):
        assert problem in output, output
    assert output.count("    fix: ") == output.count("ERROR ") + output.count("WARNING ")
    # Without --deploy only the build is checked.
    assert _run(tmp_path).returncode == 0


def test_a_clean_deployment_passes(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "app.py").write_text(GOOD)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "site.css").write_text("body{}")
    env = {"TRANSOM_SECRET_KEY": STRONG_KEY, "CHECK_DB": pg_url, "CHECK_POOL": "5"}
    collected = subprocess.run(
        [sys.executable, "-m", "transom.cli", "collectstatic"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stderr
    result = _run(tmp_path, "--deploy", "--workers", "2", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors, 0 warnings (2 workers x 1 hosts)" in result.stdout
    # A static file changed after collectstatic: a warning, still exit 0 (1 with --strict).
    (tmp_path / "static" / "site.css").write_text("body{color:red}")
    os.utime(tmp_path / "static" / "site.css", (2**31, 2**31))
    stale = _run(tmp_path, "--deploy", **env)
    assert stale.returncode == 0
    assert "WARNING deploy.static.stale" in stale.stdout
    assert _run(tmp_path, "--deploy", "--strict", **env).returncode == 1


def test_pools_larger_than_the_server_allows(tmp_path: Path, pg_url: str) -> None:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        limit = int(connection.execute(text("SHOW max_connections")).scalar_one())
        limit -= int(connection.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    engine.dispose()
    (tmp_path / "app.py").write_text(GOOD)
    pool = limit // 4 + 1  # 2 workers x 2 hosts x pool > limit
    env = {"TRANSOM_SECRET_KEY": STRONG_KEY, "CHECK_DB": pg_url, "CHECK_POOL": str(pool)}
    result = _run(tmp_path, "--deploy", "--workers", "2", "--hosts", "2", **env)
    assert result.returncode == 1
    assert f"= {4 * pool} connections, but the server accepts {limit}" in result.stderr
    assert f"at most {limit // 4} per process" in result.stderr
    # The same pools on one host, one worker, fit.
    assert _run(tmp_path, "--deploy", **env).returncode == 0
