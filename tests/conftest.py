"""Shared test setup."""
import warnings

# When a Hypothesis test fails, Hypothesis' pytest plugin imports
# hypothesis.extra._patching (to suggest a patch), which imports libcst if it
# is installed; on some machines that import emits a DeprecationWarning
# (mypy_extensions.TypedDict) which filterwarnings=error turns into an
# INTERNALERROR that aborts the whole session instead of reporting the
# failure. Import it once here, with that warning silenced, so the failure is
# reported like any other.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass
