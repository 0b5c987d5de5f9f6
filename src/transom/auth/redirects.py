"""Safe ``next`` URLs: :func:`safe_next`, shared with the admin's login.

The function lives in :mod:`transom.security.redirects` so that the admin can use it without
importing this battery (and its models); it is the same object here.
"""

from __future__ import annotations

from transom.security.redirects import safe_next

__all__ = ["safe_next"]
