"""Shared fixtures. Every test app gets a secret key unless a test removes it on purpose."""

from __future__ import annotations

import os

os.environ.setdefault("TRANSOM_SECRET_KEY", "test-secret-key-not-for-production")
# A server-driven start-up freezes the process's objects out of garbage collection (the
# gc_freeze setting). In the test process that would keep every object alive at the first
# lifespan test from ever being collected; tests/test_app.py turns it on where it checks it.
os.environ.setdefault("TRANSOM_GC_FREEZE", "0")
