"""The tasks battery's own migrations (an Alembic branch labelled ``tasks``): the outbox table.

Announced in the ``transom.migrations`` entry-point group: ``transom db migrate`` applies them
with the project's own whenever the app's models include the outbox (``transom.tasks.outbox``).
"""

from pathlib import Path

__all__ = ["BRANCH", "TABLE_PREFIX", "VERSIONS"]

#: The Alembic branch label of these migrations (``transom db migrate tasks@head``).
BRANCH = "tasks"
#: The battery's tables start with this; a project whose models include them gets the branch.
TABLE_PREFIX = "transom_tasks_"
#: The folder holding the revision scripts.
VERSIONS = Path(__file__).with_name("versions")
