"""The auth battery's own migrations (an Alembic branch labelled ``auth``).

Announced in the ``transom.migrations`` entry-point group: ``transom db migrate`` applies them
with the project's own whenever the app uses the auth models.
"""

from pathlib import Path

__all__ = ["BRANCH", "TABLE_PREFIX", "USER_TABLE", "VERSIONS", "builtin_user_in_use"]

#: The Alembic branch label of these migrations (``transom db migrate auth@head``).
BRANCH = "auth"
#: The battery's tables start with this; a project whose models include them gets the branch.
TABLE_PREFIX = "transom_auth_"
#: The folder holding the revision scripts.
VERSIONS = Path(__file__).with_name("versions")
#: The built-in user's table; its migrations create it (and its link tables) only when used.
USER_TABLE = "transom_auth_user"


def builtin_user_in_use() -> bool:
    """Whether the models being migrated include the built-in user (called inside a migration).

    Like Django's swappable ``AUTH_USER_MODEL``: a project with its own user model
    (``AuthConfig(user_model=Account)``) never imports the built-in one, so its table is not in
    the metadata, and the battery's migrations leave it and its link tables out; the project's
    own migrations create its model's tables. Without a target metadata (a hand-made
    ``env.py``) the built-in user is assumed, as before.
    """
    from alembic import op

    target = op.get_context().opts.get("target_metadata")
    if target is None:
        return True
    metadatas = target if isinstance(target, (list, tuple)) else [target]
    return any(USER_TABLE in md.tables for md in metadatas)
