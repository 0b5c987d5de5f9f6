# mypy: disable-error-code="import-untyped, misc"
from __future__ import annotations

from django.db import models


class BenchAuthor(models.Model):
    name = models.CharField(max_length=100)
    email = models.CharField(max_length=200)

    class Meta:
        db_table = "bench_author"
        managed = False

    def __str__(self) -> str:
        return self.name


class BenchItem(models.Model):
    STATUSES = [("draft", "Draft"), ("review", "Review"), ("published", "Published")]

    name = models.CharField(max_length=200)
    email = models.CharField(max_length=200)
    active = models.BooleanField()
    status = models.CharField(max_length=20, choices=STATUSES)
    score = models.IntegerField()
    created_at = models.DateTimeField()
    author = models.ForeignKey(BenchAuthor, on_delete=models.PROTECT)

    class Meta:
        db_table = "bench_item"
        managed = False

    def __str__(self) -> str:
        return self.name
