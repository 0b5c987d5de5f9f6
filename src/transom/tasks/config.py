"""Typed configuration of the tasks battery, from ``TRANSOM_TASKS_*`` variables or code."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TasksConfig"]


class TasksConfig(BaseSettings):
    """Where tasks go and how they are run.

    Every field can be set from the environment with the ``TRANSOM_TASKS_`` prefix
    (``TRANSOM_TASKS_BROKER_URL=amqp://guest:guest@localhost:5672/``).

    ``broker_url``: empty (the default) runs tasks in the app's process, after the response;
    ``amqp://`` sends them to RabbitMQ and ``redis://`` to a Redis stream, for ``transom worker``.
    ``eager=True`` runs each task at once, inside ``enqueue`` (for tests).

    Example:
        >>> TasksConfig(broker_url="redis://localhost:6379/0").backend
        'redis'
    """

    model_config = SettingsConfigDict(
        env_prefix="TRANSOM_TASKS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    broker_url: str = Field(
        default="",
        validation_alias=AliasChoices("TRANSOM_TASKS_BROKER_URL", "broker_url"),
        description="'' (in-process), amqp://... (RabbitMQ) or redis://... (Redis streams).",
    )
    eager: bool = Field(
        default=False, description="Run every task inside enqueue() (tests); overrides the broker."
    )
    result_url: str = Field(
        default="",
        description="Redis for results, deduplication keys and scheduler ticks; by default "
        "the broker when it is Redis. With RabbitMQ and no result_url, results are not kept.",
    )
    prefix: str = Field(
        default="transom",
        description="Prefix of queue names and Redis keys, so apps can share one server.",
    )
    default_queue: str = Field(default="default", description="Queue of tasks that name none.")
    result_ttl: float = Field(default=86400.0, gt=0, description="Seconds results are kept.")
    dedup_ttl: float = Field(
        default=86400.0, gt=0, description="Seconds an idempotency key keeps duplicates out."
    )
    retry_backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubled each time."
    )
    retry_backoff_max: float = Field(default=600.0, ge=0, description="Longest retry delay.")
    redeliver_after: float = Field(
        default=300.0,
        gt=0,
        description="Redis: seconds after which a task a dead worker had taken is given to "
        "another worker (RabbitMQ redelivers as soon as the connection drops).",
    )
    prefetch: int = Field(default=10, ge=1, description="Messages a worker takes in advance.")
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to reach the broker.")
    outbox_interval: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between two sweeps of the outbox (rows a crash left behind).",
    )
    retry_after: int = Field(
        default=5, ge=0, description="Retry-After (seconds) of the 503 when the broker is down."
    )

    @property
    def backend(self) -> Literal["eager", "inprocess", "amqp", "redis"]:
        """Which backend the settings select."""
        if self.eager:
            return "eager"
        scheme = self.broker_url.partition("://")[0].lower()
        if not self.broker_url:
            return "inprocess"
        if scheme in {"amqp", "amqps"}:
            return "amqp"
        if scheme in {"redis", "rediss", "unix"}:
            return "redis"
        raise ValueError(
            f"TRANSOM_TASKS_BROKER_URL {self.broker_url.partition('@')[2] or self.broker_url!r}:"
            " use amqp://, redis:// or nothing (in-process)"
        )

    @property
    def state_url(self) -> str:
        """The Redis that keeps results, keys and ticks ('' when there is none)."""
        if self.result_url:
            return self.result_url
        return self.broker_url if self.backend == "redis" else ""
