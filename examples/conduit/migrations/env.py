"""Alembic environment for this project's migrations (written by ``transom db makemigrations``).

Transom's runner connects with the app's ``DATABASE_URL`` and compares against your models. To
customise (extra ``include_object`` filters, another metadata...), pass options to
``run_migrations`` — see the migrations docs.
"""

from transom.db.migrations.runner import run_migrations

run_migrations()
