"""The lines the report proposes for examples/blog give it login, logout and a members' page.

The example is copied to a temporary folder, the lines are added there (the real file is
left to the lead), and the copy is exercised like the other example tests.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "blog"

IMPORTS = """\
from transom.auth import Auth, CurrentUser
from transom.db import get_database, setup
"""

LINES = """
setup(app)  # the database: DATABASE_URL (default: db.sqlite3 beside the app)
Auth(app)  # /auth/login, /auth/logout, password change and reset


@app.on_startup
async def create_tables() -> None:
    \"\"\"Demo only: a real project runs `transom db migrate`.\"\"\"
    await get_database(app).create_all()


@app.get("/dashboard", name="dashboard", include_in_schema=False)
async def dashboard(user: CurrentUser) -> TemplateResponse:
    \"\"\"Only logged-in users see this page; others are sent to the login page.\"\"\"
    return render("dashboard.html", user=user)
"""

HEADER = """\
    {% set user = current_user() %}
    {% if user %}<a href="{{ url_for('dashboard') }}">{{ user.username }}</a>
    <form method="post" action="{{ url_for('auth.logout') }}">
      {{ csrf_input() }}<button>Log out</button>
    </form>
    {% else %}<a href="{{ url_for('auth.login') }}">Log in</a>{% endif %}
"""

DASHBOARD = """\
{% extends "base.html" %}
{% block title %}Dashboard{% endblock %}
{% block content %}
<h1>Hello, {{ user.username }}</h1>
<p>Only logged-in users see this page.</p>
{% endblock %}
"""


@pytest.fixture
def blog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    root = tmp_path / "blog"
    shutil.copytree(EXAMPLE, root)
    source = (root / "app.py").read_text()
    source = source.replace("from transom.forms import", IMPORTS + "from transom.forms import", 1)
    source = source.replace("Security(app)\n", "Security(app)\n" + LINES, 1)
    (root / "app.py").write_text(source)
    base = (root / "templates" / "base.html").read_text()
    (root / "templates" / "base.html").write_text(
        base.replace("  </header>", HEADER + "  </header>", 1)
    )
    (root / "templates" / "dashboard.html").write_text(DASHBOARD)
    (root / "templates" / "auth").mkdir()
    (root / "templates" / "auth" / "base.html").write_text('{% extends "base.html" %}\n')
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'blog.sqlite3'}")
    spec = importlib.util.spec_from_file_location("auth_example_blog", root / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["auth_example_blog"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["auth_example_blog"]


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_login_dashboard_logout(blog: ModuleType) -> None:
    from transom.auth import User
    from transom.db import get_database

    async def add_user() -> None:
        async with get_database(blog.app).session() as db:
            user = User(username="writer", email="w@example.com")
            user.set_password("violet tractor umbrella")
            db.add(user)
            await db.commit()

    with blog.app.test_client() as client:
        client._loop.run(add_user())
        home = client.get("/")
        assert 'href="/auth/login"' in home.text
        gate = client.get("/dashboard", headers={"accept": "text/html"})
        assert gate.status_code == 303
        login_page = client.get(gate.headers["location"])
        assert "Transom blog" in login_page.text  # the auth pages use the blog's layout
        done = client.post(
            "/auth/login",
            data={
                "username": "writer",
                "password": "violet tractor umbrella",
                "next": "/dashboard",
                "csrf_token": _token(login_page.text),
            },
        )
        assert done.headers["location"] == "/dashboard"
        page = client.get("/dashboard")
        assert "Hello, writer" in page.text
        assert "Log out" in page.text
        client.post("/auth/logout", data={"csrf_token": _token(page.text)})
        assert client.get("/dashboard").status_code == 401
