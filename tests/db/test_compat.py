"""``transom.db._compat``: the one read of a non-public SQLAlchemy attribute still works."""

from __future__ import annotations

from sqlalchemy import select

from transom.db._compat import order_by_clauses

from .models import Author, Post


def test_order_by_clauses_in_order() -> None:
    assert order_by_clauses(select(Author)) == ()
    stmt = select(Post).order_by(Post.score.desc(), Post.id).order_by(Post.slug)
    rendered = [str(clause) for clause in order_by_clauses(stmt)]
    assert rendered == ["post.score DESC", "post.id", "post.slug"]
    assert order_by_clauses(stmt.order_by(None)) == ()  # order_by(None) clears them
