"""The battery shape (install, of, once per app, settings), the CLI and the core's independence."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from transom import App
from transom.cache import Cache, CacheConfig, MemoryBackend, RedisBackend
from transom.cache.cli import cache as cache_command
from transom.exceptions import ImproperlyConfigured

from .conftest import REDIS_HOST, REDIS_PORT, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


def test_install_shapes() -> None:
    app = App()
    cache = Cache(app)
    assert Cache.of(app) is cache
    assert app.extensions["transom.cache"] is cache
    with pytest.raises(ImproperlyConfigured, match="already installed"):
        app.install(Cache())
    other = App()
    installed = other.install(Cache(CacheConfig(url="dummy://")))
    assert Cache.of(other) is installed
    with pytest.raises(ImproperlyConfigured, match="Cache is not installed"):
        Cache.of(App())


def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSOM_CACHE_URL", REDIS_URL)
    monkeypatch.setenv("TRANSOM_CACHE_KEY_PREFIX", "blog")
    monkeypatch.setenv("TRANSOM_CACHE_IGNORE_COOKIES", "_ga*,_gid")
    config = CacheConfig()
    assert (config.url, config.key_prefix) == (REDIS_URL, "blog")
    assert config.ignore_cookies == ["_ga*", "_gid"]
    assert isinstance(Cache(config).backend, RedisBackend)
    assert isinstance(Cache(CacheConfig(url="memory://")).backend, MemoryBackend)
    with pytest.raises(ImproperlyConfigured, match="unknown cache URL scheme"):
        Cache(CacheConfig(url="memcached://x"))
    with pytest.raises(ImproperlyConfigured, match="names its service"):
        Cache(CacheConfig(url="redis+sentinel://127.0.0.1:26379"))


def test_the_core_never_imports_the_cache() -> None:
    code = (
        "import sys, transom, transom.app, transom.cli, transom.testing;"
        "assert not [m for m in sys.modules if m.startswith('transom.cache')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def SLOW_OK(prefix: str) -> CacheConfig:
    # The default 0.25 s timeouts treat a slow Redis as down (reads miss, writes are skipped):
    # right for a site, wrong for a test on a machine loaded by the rest of the suite.
    return CacheConfig(url=REDIS_URL, key_prefix=prefix, socket_timeout=5, connect_timeout=5)


def test_cache_clear_command(tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from _services import require_service

    require_service("Redis", REDIS_HOST, REDIS_PORT)
    (tmp_path / "app.py").write_text(
        "from transom import App\nfrom transom.cache import Cache, CacheConfig\n"
        f"app = App()\nCache(app, CacheConfig(url={REDIS_URL!r}, key_prefix={prefix!r}, "
        "socket_timeout=5, connect_timeout=5))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # The command imports this app.py as "app": leave no module of that name behind for the
    # next test that writes an app.py of its own.
    monkeypatch.delitem(sys.modules, "app", raising=False)

    async def fill() -> None:
        cache = Cache(SLOW_OK(prefix))
        await cache.set_many({"a": 1, "b": 2})
        await cache.close()

    async def left() -> int:
        cache = Cache(SLOW_OK(prefix))
        found = len(await cache.get_many(["a", "b"]))
        await cache.close()
        return found

    asyncio.run(fill())
    from transom.cli import main

    result = CliRunner().invoke(main, ["cache", "clear"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 cache entries." in result.output
    assert asyncio.run(left()) == 0
    assert "clear" in CliRunner().invoke(cache_command, ["--help"]).output
    sys.modules.pop("app", None)
