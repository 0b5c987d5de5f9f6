"""The auth battery's own migrations (an Alembic branch labelled ``auth``).

``VERSIONS`` is the folder of revision scripts; the data battery adds it to the project's
``version_locations`` so ``transom db migrate`` applies them with the project's own.
"""

from pathlib import Path

__all__ = ["BRANCH", "VERSIONS"]

#: The Alembic branch label of these migrations (``transom db migrate auth@head``).
BRANCH = "auth"
#: The folder holding the revision scripts.
VERSIONS = Path(__file__).with_name("versions")
