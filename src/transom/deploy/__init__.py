"""Deployment: ``transom check --deploy``, the checklist to run before going live.

See ``docs/deployment.md``.
"""

from __future__ import annotations

from transom.deploy.checks import Context, Problem, deploy_checks

__all__ = ["Context", "Problem", "deploy_checks"]
