"""The auth battery's own migrations (an Alembic branch labelled ``auth``).

Announced in the ``transom.migrations`` entry-point group: ``transom db migrate`` applies them
with the project's own whenever the app uses the auth models.
"""

from pathlib import Path

__all__ = ["BRANCH", "TABLE_PREFIX", "VERSIONS"]

#: The Alembic branch label of these migrations (``transom db migrate auth@head``).
BRANCH = "auth"
#: The battery's tables start with this; a project whose models include them gets the branch.
TABLE_PREFIX = "transom_auth_"
#: The folder holding the revision scripts.
VERSIONS = Path(__file__).with_name("versions")
