"""The admin battery's own migrations (an Alembic branch labelled ``admin``): its history table.

Announced in the ``transom.migrations`` entry-point group: ``transom db migrate`` applies them
with the project's own whenever the app uses the admin.
"""

from pathlib import Path

__all__ = ["BRANCH", "TABLE_PREFIX", "VERSIONS"]

#: The Alembic branch label of these migrations (``transom db migrate admin@head``).
BRANCH = "admin"
#: The battery's tables start with this; a project whose models include them gets the branch.
TABLE_PREFIX = "transom_admin_"
#: The folder holding the revision scripts.
VERSIONS = Path(__file__).with_name("versions")
