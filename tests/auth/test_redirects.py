"""safe_next: only same-site targets survive."""

from __future__ import annotations

import pytest

from transom.auth import safe_next


@pytest.mark.parametrize(
    ("url", "secure", "expected"),
    [
        ("/account", True, "/account"),
        ("/a?b=c#d", True, "/a?b=c#d"),
        ("", True, "/"),
        (None, True, "/"),
        ("account", True, "/"),
        ("//evil.com", True, "/"),
        ("/\\evil.com", True, "/"),
        ("\\/evil.com", True, "/"),
        ("https://evil.com/x", True, "/"),
        ("https://site.example/x", True, "https://site.example/x"),
        ("http://site.example/x", True, "/"),
        ("http://site.example/x", False, "http://site.example/x"),
        ("https://site.example:444/x", True, "/"),
        ("https://user@site.example/x", True, "/"),
        ("javascript:alert(1)", False, "/"),
        (" javascript:alert(1)", False, "/"),
        ("java\tscript:alert(1)", False, "/"),
        ("/\n/evil.com", True, "/"),
        ("ftp://site.example/", True, "/"),
        ("https:evil.com", True, "/"),
        ("https:///evil.com", True, "/"),
    ],
)
def test_safe_next(url: str | None, secure: bool, expected: str) -> None:
    assert safe_next(url, host="site.example", secure=secure) == expected


def test_allowed_hosts() -> None:
    allowed = frozenset({"accounts.example"})
    assert (
        safe_next("https://accounts.example/", host="x", secure=True, allowed_hosts=allowed) != "/"
    )


def test_one_function_for_site_and_admin() -> None:
    import transom.auth
    from transom.admin.views import pages
    from transom.security.redirects import safe_next as shared

    assert transom.auth.safe_next is shared
    assert pages.login.__globals__["safe_next"] is shared  # what the admin login calls
