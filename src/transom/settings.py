"""Typed settings, read from ``TRANSOM_*`` environment variables and a ``.env`` file."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from transom.accesslog import DEFAULT_FORMAT as DEFAULT_ACCESS_LOG_FORMAT
from transom.exceptions import ImproperlyConfigured

__all__ = ["Settings"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Framework settings. Subclass it to add your own; every field can come from the environment.

    ``TRANSOM_DEBUG=1``, ``TRANSOM_SECRET_KEY=...``,
    ``TRANSOM_ALLOWED_HOSTS=example.com,.example.org``.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRANSOM_", env_file=".env", extra="ignore", validate_default=True
    )

    debug: bool = False
    secret_key: SecretStr | None = Field(default=None, description="Signs sessions and tokens.")
    # Previous secret keys, still accepted for verifying (not for signing): rotate keys
    # without logging everybody out. TRANSOM_SECRET_KEY_FALLBACKS='["old-key"]'.
    secret_key_fallbacks: list[SecretStr] = []
    # Hosts this app answers for; a leading dot matches subdomains, "*" disables the check.
    allowed_hosts: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "[::1]"]
    # Request limits, enforced while reading (before the whole body is in memory).
    max_body_size: int = 10 * MiB
    max_upload_size: int = 100 * MiB
    max_form_fields: int = 1000
    max_form_files: int = 100
    max_json_depth: int = 64
    # Request header count and total size (names + values); more is refused with 431.
    max_headers: int = 100
    max_header_bytes: int = 32 * 1024
    upload_spool_size: int = 1 * MiB
    thread_pool_size: int = 40
    # When a server has started the app, move everything alive then (modules, routes, models,
    # engines) out of the cyclic garbage collector's sight (gc.freeze), so the full
    # collections that load sets off no longer rescan them.
    gc_freeze: bool = True
    # "redirect": /about/ <-> /about answer with a 308 to the registered form; "strict": 404.
    trailing_slash: Literal["redirect", "strict"] = "redirect"
    # OpenAPI document and interactive docs; set a URL to "" to turn it off.
    title: str = "Transom"
    version: str = "0.1.0"
    openapi_url: str = "/openapi.json"
    docs_url: str = "/docs"
    # AsyncAPI 3.0 document of the WebSocket routes and declared channels ("" turns it off).
    asyncapi_url: str = "/asyncapi.json"
    server: Literal["granian", "uvicorn"] = "granian"
    # One line per request on the `transom.access` logger, the same on every server
    # (see transom.accesslog for the fields); written to stdout unless logging is configured.
    access_log: bool = True
    access_log_format: str = DEFAULT_ACCESS_LOG_FORMAT
    # Log lines written by a server running the app when logging isn't configured (see
    # transom.logs): "json" objects, "text", or "auto": text in debug mode, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Every request gets an id, returned in this header and put on its log lines; taken from
    # the request only when a trusted proxy (the security battery's) sent it. "" turns it off.
    request_id_header: str = "X-Request-ID"
    # Static files: `static_dir` (beside the app's module) is served at `static_url`;
    # `transom collectstatic` writes fingerprinted copies to `static_root`, which production
    # (debug off) serves first. Set static_url to "" to serve nothing.
    static_url: str = "/static"
    static_dir: str = "static"
    static_root: str = "staticfiles"
    templates_dir: str = "templates"
    # WebSocket limits (transom.websockets), per connection: a bigger message is closed with
    # 1009, more messages a second (bursts up to one second's worth) with 1008, and no message
    # either way for `websocket_idle_timeout` seconds with 1001. 0 turns a limit off.
    websocket_max_message_size: int = 1 * MiB
    websocket_rate_limit: float = 100.0
    websocket_idle_timeout: float = 300.0

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    @field_validator("access_log_format")
    @classmethod
    def _check_access_log_format(cls, value: str) -> str:
        from transom.accesslog import check_format

        check_format(value)
        return value

    def check(self) -> None:
        """Refuse to start with settings that are unsafe outside debug mode.

        A secret key is not among them: an app that signs nothing (a hello world, a JSON API
        without sessions) runs without one. What signs asks for it with
        :meth:`require_secret_key`.
        """

    def require_secret_key(self, purpose: str) -> None:
        """Raise :class:`ImproperlyConfigured` unless a secret key is set (or in debug mode).

        Args:
            purpose: What needs the key, for the message ("transom.security signs sessions
                and CSRF tokens").
        """
        if self.debug or (self.secret_key is not None and self.secret_key.get_secret_value()):
            return
        raise ImproperlyConfigured(
            f"TRANSOM_SECRET_KEY is not set, and {purpose}: outside debug mode that needs a "
            "secret key. Set the TRANSOM_SECRET_KEY environment variable (or secret_key in "
            "your Settings), for example to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
            "or run in debug mode with TRANSOM_DEBUG=1."
        )
