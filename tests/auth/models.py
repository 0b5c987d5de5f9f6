"""A blog model for the permission tests: articles owned by users."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from transom.db import Model


class AuthTestArticle(Model):
    __tablename__ = "auth_test_article"
    __app_label__ = "blog"
    __permissions__ = [("publish_authtestarticle", "Can publish articles")]

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("transom_auth_user.id", ondelete="CASCADE"))
