"""Renamed public names: the old name still works for a release and warns naming the new one."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import pytest

import transom
from transom import App, FormParam
from transom import params as params_module
from transom._deprecation import REMOVED_IN


@pytest.mark.parametrize("module", [transom, params_module])
def test_transom_form_is_the_form_param_marker_with_a_warning(module: object) -> None:
    with pytest.warns(DeprecationWarning, match=r"\.Form is deprecated, use .*\.FormParam") as w:
        old = module.Form  # type: ignore[attr-defined]
    assert old is FormParam
    assert f"Transom {REMOVED_IN}" in str(w[0].message)
    # The warning points at the line that used the old name, not at Transom's internals.
    assert w[0].filename == __file__


def test_from_import_of_the_old_name_warns_at_the_import() -> None:
    with pytest.warns(DeprecationWarning, match="transom.forms.Form is the form class"):
        from transom import Form
    assert Form is FormParam


def test_importing_transom_and_star_import_do_not_warn() -> None:
    # A fresh interpreter: the warning may only come from a use of an old name.
    code = (
        "import transom, transom.params, transom.db, transom.security, transom.auth\n"
        "from transom import *\n"
        "from transom.params import *\n"
        "from transom.db import *\n"
        "from transom.security import *\n"
        "assert 'Form' not in dir() and 'Session' not in dir() and 'Sess' not in dir()\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_other_names_are_unchanged() -> None:
    from transom.templating import render

    assert transom.render is render  # still imported lazily
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        transom.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_the_old_marker_still_reads_form_fields() -> None:
    with pytest.warns(DeprecationWarning, match="use transom.FormParam"):
        old = transom.Form
    app = App()

    @app.post("/old")
    async def old_marker(name: Annotated[str, old()]) -> dict[str, str]:
        return {"name": name}

    @app.post("/new")
    async def new_marker(name: Annotated[str, FormParam(min_length=2)]) -> dict[str, str]:
        return {"name": name}

    with app.test_client() as client:
        assert client.post("/old", data={"name": "Ada"}).json() == {"name": "Ada"}
        assert client.post("/new", data={"name": "Ada"}).json() == {"name": "Ada"}
        assert client.post("/new", data={"name": "A"}).status_code == 422
