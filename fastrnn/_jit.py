"""The one place that sets how every kernel is compiled.

``cache=True`` so a second process starts fast; ``fastmath=False`` so the
kernels agree with the NumPy reference to float64 round-off on every machine;
``error_model="numpy"`` because inputs are validated in Python before any
kernel runs, so the division checks of the Python error model only cost time
(and they keep loops from vectorising).
"""
import hashlib
import os
from pathlib import Path

import numba

KERNEL_OPTIONS = dict(cache=True, fastmath=False, error_model="numpy", nogil=True)


def kernel(func=None, *, inline=False):
    """Compile ``func`` as a fastrnn kernel (see module docstring).

    ``@kernel(inline=True)`` inlines a small helper into its callers at
    Numba's level, so LLVM sees its loop together with where the arrays
    come from (measured: the blocked products vectorise better so)."""
    options = dict(KERNEL_OPTIONS, inline="always" if inline else "never")
    if func is None:
        return numba.njit(**options)
    return numba.njit(**options)(func)


def _expire_stale_cache():
    """Numba checks a cached kernel against its own source file only: after
    a change to a helper in another file (or a new Numba), the old machine
    code would load and run. So the kernel sources are hashed, and when the
    hash differs from the one the cache was built with, every kernel file is
    touched, which makes Numba compile afresh (its cache index keys on the
    file's modification time). Nothing happens where the package is
    read-only; there Numba keeps its cache elsewhere per version anyway."""
    package = Path(__file__).parent
    sources = sorted(package.glob("kernels/*.py")) + [package / "_jit.py", package / "_codes.py"]
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sources:
        digest.update(path.read_bytes())
    stamp = package / "kernels" / "__pycache__" / "sources.sha256"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        for path in sources:
            os.utime(path)
        stamp.parent.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass


_expire_stale_cache()
