"""Browser tests' shared pieces: an app served by uvicorn in a thread, and headless Chromium.

Chromium and its chromedriver are Debian's packages (``.ci/run`` installs them). Without them a
browser test is skipped with one line, except under ``CI=true``, where that is a broken
environment and fails the run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from _services import is_ci

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

#: Flags every test browser gets: headless, no sandbox (root in CI), nothing fetched from the
#: network behind the test's back.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any, *, log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def start_chromium(
    profile: Path,
    *,
    window_size: tuple[int, int] = (1280, 900),
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> Any:
    """A headless Chromium driven by chromedriver, its profile in ``profile``; the caller quits it.

    ``env`` is the browser's environment (e.g. ``TZ`` for a time-zone test); ``capabilities``
    are set on its options (e.g. ``goog:loggingPrefs`` to read the console).
    """
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import WebDriverException

    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "chromium and chromedriver (Debian packages) are needed for browser tests"
        if is_ci():  # .ci/run installs them: missing there is a broken environment
            pytest.fail(f"{message} (CI=true)", pytrace=False)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    width, height = window_size
    for flag in (
        *BASE_FLAGS,
        *flags,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    service = webdriver.ChromeService(CHROMEDRIVER, env=dict(env) if env is not None else None)
    try:
        return webdriver.Chrome(service=service, options=options)
    except WebDriverException as exc:
        if is_ci():
            raise
        pytest.skip(f"headless Chromium did not start: {exc.msg}")
