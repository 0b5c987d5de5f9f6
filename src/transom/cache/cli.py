"""``transom cache clear``: empty the app's cache (registered through ``transom.commands``)."""

from __future__ import annotations

import asyncio

import click

__all__ = ["cache"]


@click.group()
def cache() -> None:
    """The cache battery."""


@cache.command()
@click.pass_context
def clear(ctx: click.Context) -> None:
    """Remove every entry of the app's cache (its key prefix only: other data stays)."""
    from transom.cache.config import CacheConfig
    from transom.cache.core import Cache
    from transom.cli import load_app

    try:
        target = Cache.of(load_app(ctx))
    except click.UsageError as exc:
        if "Could not find an app" not in str(exc):
            raise
        target = Cache(CacheConfig())  # no app: the cache the environment configures

    async def run() -> tuple[int, bool]:
        try:
            removed = await target.clear()
            return removed, target.available
        finally:
            await target.close()

    removed, available = asyncio.run(run())
    if not available:
        raise click.ClickException(f"the cache at {target.config.url} is unavailable")
    click.echo(f"Removed {removed} cache entr{'y' if removed == 1 else 'ies'}.")
