"""Renamed public names: the old name keeps working for one release, with a DeprecationWarning.

A module lists its renames and gets a PEP 562 module ``__getattr__`` from
:func:`renamed_names`. Python calls it only for names the module does not define, so the
warning fires where the old name is used (``from transom import Form``, ``transom.Form``),
never when Transom itself is imported, and it points at the user's line (``stacklevel=2``).
The old names stay out of ``__all__`` so that ``import *`` does not warn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REMOVED_IN", "renamed_names"]

#: The release that drops the old names (deprecated in 0.2, Django's "two releases" policy).
REMOVED_IN = "0.3"


def renamed_names(
    module: str,
    namespace: Mapping[str, Any],
    renames: Mapping[str, str],
    *,
    hints: Mapping[str, str] | None = None,
    fallback: Callable[[str], Any] | None = None,
) -> Callable[[str], Any]:
    """Build a module ``__getattr__`` that serves each old name as its new one, with a warning.

    Args:
        module: The module's ``__name__`` (named in the message).
        namespace: The module's ``globals()``, where the new names live.
        renames: ``{old name: new name}``.
        hints: Extra advice appended to the message of some old names.
        fallback: Called for any other name (a module's own lazy attributes).
    """

    def __getattr__(name: str) -> Any:
        new = renames.get(name)
        if new is None:
            if fallback is not None:
                return fallback(name)
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        message = (
            f"{module}.{name} is deprecated, use {module}.{new} instead "
            f"(the old name goes away in Transom {REMOVED_IN})"
        )
        if hints and name in hints:
            message += f"; {hints[name]}"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return namespace[new]

    return __getattr__
