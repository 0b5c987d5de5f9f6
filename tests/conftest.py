"""Shared fixtures. Every test app gets a secret key unless a test removes it on purpose."""

from __future__ import annotations

import os

os.environ.setdefault("TRANSOM_SECRET_KEY", "test-secret-key-not-for-production")
