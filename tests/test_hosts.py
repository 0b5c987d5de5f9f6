"""The strict Host parser and the allowed-hosts matcher (transom._hosts)."""

from __future__ import annotations

import pytest

from transom._hosts import AllowedHosts, parse_host


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM.", ("example.com", None)),
        ("example.com:8000", ("example.com", 8000)),
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
        ("my_host-1.internal", ("my_host-1.internal", None)),
        ("[::1]", ("[::1]", None)),
        ("[2001:DB8::1]:443", ("[2001:db8::1]", 443)),
        ("[::ffff:127.0.0.1]", ("[::ffff:127.0.0.1]", None)),
    ],
)
def test_plain_hosts_parse(value: str, parsed: tuple[str, int | None]) -> None:
    assert parse_host(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        ":80",
        "a..b",
        ".example.com",
        "a" * 254,
        "example.com:65536",
        "example.com:123456",
        "user:pass@example.com",
        "example.com:80@evil.com",
        "example.com/path",
        "ex ample.com",
        "exa%6dple.com",
        "example.com;x",
        "[::1]]",
        "[1.2.3.4]",
        "[::1]80",
        "\u212aim.example",  # a Kelvin sign is not an ASCII letter
    ],
)
def test_anything_more_than_a_host_is_refused(value: str) -> None:
    assert parse_host(value) is None


def test_allowed_hosts_match_exact_suffix_and_any() -> None:
    hosts = AllowedHosts(["Example.com", ".api.example.com"])
    assert hosts.allows(b"example.com:8000")
    assert hosts.allows(b"api.example.com")
    assert hosts.allows(b"v1.api.example.com.")
    assert not hosts.allows(b"evilapi.example.com")
    assert not hosts.allows(b"example.com.evil")
    assert hosts.allows(None)  # HTTP/1.0: no Host, links use the server address
    anything = AllowedHosts(["*"])
    assert anything.allows(b"whatever.example")
    assert not anything.allows(b"whatever.example@evil.com")


def test_remembered_values_stay_exact() -> None:
    hosts = AllowedHosts(["example.com"])
    assert hosts.allows(b"example.com")
    assert hosts.allows(b"example.com")  # served from the remembered set
    assert not hosts.allows(b"example.com@evil.com")
