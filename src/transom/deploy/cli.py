"""``transom check``: build the app (every start-up check), and with ``--deploy`` run the
deployment checklist; exit 1 when it finds an error."""

from __future__ import annotations

import click

from transom.cli import load_app


@click.command()
@click.option("--deploy", is_flag=True, help="Run the production checklist too.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="TRANSOM_WORKERS",
    type=click.IntRange(1),
    help="Worker processes per host (as for `transom run`).",
)
@click.option(
    "--hosts",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Hosts running the app against the same database.",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.pass_context
def check(ctx: click.Context, deploy: bool, workers: int, hosts: int, strict: bool) -> None:
    """Check the app (and with --deploy, its production settings)."""
    from transom.deploy.checks import deploy_checks

    app = load_app(ctx)
    app.build()  # settings, routes, the batteries' own start-up checks
    if not deploy:
        click.echo("The app builds: no problems found (add --deploy for the production checklist).")
        return
    problems = deploy_checks(app, workers=workers, hosts=hosts)
    for problem in problems:
        click.echo(str(problem), err=problem.level == "error")
    errors = sum(p.level == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"{errors} errors, {warnings} warnings ({workers} workers x {hosts} hosts).")
    if errors or (strict and warnings):
        ctx.exit(1)
