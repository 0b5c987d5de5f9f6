# mypy: disable-error-code="import-untyped, misc"
"""Stock Django admin options, the same columns, search and filters as the Transom side."""

from __future__ import annotations

from django.contrib import admin

from .models import BenchAuthor, BenchItem


@admin.register(BenchItem)
class ItemAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "email", "active", "status", "created_at", "author"]
    search_fields = ["name"]
    list_filter = ["active", "status"]
    list_per_page = 100


@admin.register(BenchAuthor)
class AuthorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    search_fields = ["name"]
