"""Optional packages of the tests (PyTorch, scikit-learn, Dask, matplotlib,
mypy): skipped where they are not installed, but never in CI, which sets
FASTRNN_REQUIRE_OPTIONAL=1 so that a missing package fails the run instead
of silently skipping its cross-checks."""
import importlib
import os

import pytest


def require(name, reason):
    """The module ``name``; skip the test without it (fail, in CI)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("FASTRNN_REQUIRE_OPTIONAL"):
            pytest.fail(f"{name} is required here (FASTRNN_REQUIRE_OPTIONAL is set): {exc}")
        pytest.skip(f"{name} is not installed: {reason}")
