"""The Transom side: the admin over bench_item / bench_author, served by uvicorn."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from typing import Any

from common import DATABASE_URL, PER_PAGE, STATUSES
from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from transom import App, Settings
from transom.admin import Admin, ModelAdmin, SessionAuth
from transom.db import Database, DatabaseConfig, make_base
from transom.security import Security

Base: Any = make_base(name="BenchBase")


class BenchUser(Base):
    __tablename__ = "transom_bench_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_staff: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=True)

    def set_password(self, raw: str) -> None:
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt, 100_000)
        self.password = f"{salt.hex()}${digest.hex()}"

    def check_password(self, raw: str) -> bool:
        salt, _, digest = self.password.partition("$")
        mine = hashlib.pbkdf2_hmac("sha256", raw.encode(), bytes.fromhex(salt), 100_000)
        return hmac.compare_digest(mine.hex(), digest)


class BenchAuthor(Base):
    __tablename__ = "bench_author"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))

    def __str__(self) -> str:
        return self.name


class BenchItem(Base):
    __tablename__ = "bench_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool]
    status: Mapped[str] = mapped_column(
        Enum(*STATUSES, native_enum=False, create_constraint=False, length=20)
    )
    score: Mapped[int]
    created_at: Mapped[dt.datetime]
    author_id: Mapped[int] = mapped_column(ForeignKey("bench_author.id"))
    author: Mapped[BenchAuthor] = relationship()

    def __str__(self) -> str:
        return self.name


app = App(Settings(secret_key="bench-secret-key", allowed_hosts=["127.0.0.1"]))
Security(app)
app.install(Database(DatabaseConfig(url=DATABASE_URL), metadata=Base.metadata))
admin = Admin(app, auth=SessionAuth(BenchUser))


@admin.register(BenchItem)
class ItemAdmin(ModelAdmin):
    list_display = ["name", "email", "active", "status", "created_at", "author"]
    search_fields = ["name"]
    list_filter = ["active", "status"]
    list_per_page = PER_PAGE


admin.register(BenchAuthor, search_fields=["name"])
