"""The one place that sets how every kernel is compiled.

``cache=True`` so a second process starts fast, except with Numba's bounds
checks on (NUMBA_BOUNDSCHECK=1, a testing mode): Numba's cache does not
tell checked machine code from unchecked, so checked kernels are never
cached, and a checked process can never load unchecked code written by
another; ``fastmath=False`` so the
kernels agree with the NumPy reference to float64 round-off on every machine;
``error_model="numpy"`` because inputs are validated in Python before any
kernel runs, so the division checks of the Python error model only cost time
(and they keep loops from vectorising).
"""
import hashlib
from pathlib import Path
from types import MethodType

import numba
import numpy as np
from numba import types
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import overload

KERNEL_OPTIONS = dict(cache=not numba.config.BOUNDSCHECK, fastmath=False, error_model="numpy",
                      nogil=True)


def kernel(func=None, *, inline=False, slp=False):
    """Compile ``func`` as a fastrnn kernel (see module docstring).

    ``@kernel(inline=True)`` inlines a small helper into its callers at
    Numba's level, so LLVM sees its loop together with where the arrays
    come from (measured: the blocked products vectorise better so).

    ``@kernel(slp=True)`` compiles it with LLVM's SLP vectoriser, which Numba
    leaves off: it turns straight-line code on tuples of consecutive elements
    into vector instructions (the register tiles of ``_linalg``). It only
    packs the same operations side by side, without reordering any sum, so
    the results are the same bits as without it."""
    options = dict(KERNEL_OPTIONS, inline="always" if inline else "never")
    if func is None:
        return lambda func: kernel(func, inline=inline, slp=slp)
    dispatcher = numba.njit(**options)(func)
    if slp and not numba.config.DISABLE_JIT:
        dispatcher.compile = MethodType(_compile_with_slp, dispatcher)
    return dispatcher


def _compile_with_slp(dispatcher, signature):
    """Dispatcher.compile with Numba's SLP_VECTORIZE setting on, for this
    dispatcher and what it compiles for the first time on the way (its
    helpers): the setting is read whenever LLVM's passes are set up, and
    Numba's compiler lock (re-entrant; compile takes it too) keeps any other
    thread from compiling while it is on. Numba reloads its settings from
    the environment when a compilation starts if a NUMBA_* variable changed
    since the last reload, which would turn SLP off again (and cache the
    scalar code): so reload first."""
    with global_compiler_lock:
        numba.core.config.reload_config()
        before = numba.config.SLP_VECTORIZE
        numba.config.SLP_VECTORIZE = 1
        try:
            return type(dispatcher).compile(dispatcher, signature)
        finally:
            numba.config.SLP_VECTORIZE = before


_loaded = set()


def load_first(key, overloads):
    """Load each (kernel, argument types) that ``overloads()`` lists from Numba's cache
    (compiling it if it is not there), once per process and ``key``, before
    the kernels that call them run.

    Why: Numba links a copy of every callee into each caller's machine code.
    A call binds to the callee's own machine code when that was loaded into
    the process first, else to the caller's copy. In the process that
    compiles, callees are always loaded first; in every later process, which
    loads its kernels from the cache, the callers come first and run on the
    copies. Those copies of the matrix products ran slower in float32
    (measured, ``loss_and_grad`` of the ``batch`` case on one core: LSTM 18.5
    against 13.5 ms, GRU 13.3 against 10.1 ms, simple RNN 5.6 against 4.6 ms;
    float64 the same either way). Loading only what the coming call needs
    compiles nothing that it would not compile anyway."""
    if key in _loaded or numba.config.DISABLE_JIT:
        return
    # No lock of its own: Dispatcher.compile holds Numba's compiler lock, and
    # a thread that comes second gets the overload the first one made.
    for dispatcher, argument_types in overloads():
        dispatcher.compile(argument_types)
    _loaded.add(key)


def python_fallback(python_function):
    """Decorate a kernel helper that Python cannot run as it is written (an
    LLVM intrinsic, integer arithmetic that must wrap): with
    NUMBA_DISABLE_JIT=1, when the kernels run as plain Python (for coverage
    and Python's index checks), ``python_function`` replaces it."""
    def decorate(compiled):
        return python_function if numba.config.DISABLE_JIT else compiled
    return decorate


def by_precision(float64_body, float32_body):
    """A kernel helper with a body per float precision, chosen by its first
    argument (a number or an array) where a kernel calls it, when that
    kernel compiles: float32 kernels never widen to float64, and each
    precision compiles only its own body."""
    def helper(*args):                           # called from Python (kernels as Python, tests)
        return (float32_body if _is_float32(args[0]) else float64_body)(*args)
    helper.__name__ = helper.__qualname__ = float64_body.__name__.lstrip("_")
    helper.__doc__ = float64_body.__doc__
    if numba.config.DISABLE_JIT:
        return helper

    def choose(*arg_types):
        first = arg_types[0].dtype if isinstance(arg_types[0], types.Array) else arg_types[0]
        body = float32_body if first == types.float32 else float64_body
        return _taking(len(arg_types), body)

    n_args = float64_body.py_func.__code__.co_argcount
    overload(helper, inline="never", jit_options=dict(fastmath=False, error_model="numpy"))(
        _taking(n_args, choose))
    return helper


def _is_float32(value):
    return getattr(value, "dtype", None) == np.float32 or isinstance(value, np.float32)


def _taking(n_args, func):
    """``func`` as a function of ``n_args`` named arguments: Numba compiles no
    closure that takes ``*args``, and an overload's typing function and
    implementation must take the same arguments."""
    if n_args == 1:
        return lambda x: func(x)
    if n_args == 3:
        return lambda a, b, c: func(a, b, c)
    raise NotImplementedError(f"by_precision: bodies of {n_args} arguments")


def expire_stale_cache(dispatcher):
    """Numba keys a cached kernel on its own source file only (its text, in
    Numba 0.68; its modification time in older versions): after a change to
    a helper in another file (an upgrade of fastrnn, say), or with a new
    Numba, the old machine code would load and run. So the sources of all
    kernels are hashed, with Numba's version and NUMBA_BOUNDSCHECK (which
    Numba's cache ignores: a run with bounds checks would load unchecked
    code), and when the hash differs from the one stored beside the cache,
    every cached kernel of fastrnn is deleted there and compiled afresh.

    ``dispatcher``: any kernel; its cache directory is where Numba keeps all
    of them (``kernels/__pycache__``, or below NUMBA_CACHE_DIR). Called once
    by ``fastrnn/__init__.py``, after the kernels are defined and before any
    runs. Where the cache directory cannot be written, or kernels are not
    cached (bounds checks on), nothing happens."""
    if not KERNEL_OPTIONS["cache"]:
        return
    package = Path(__file__).parent
    sources = sorted(package.glob("kernels/*.py")) + [package / "_jit.py", package / "_codes.py"]
    digest = hashlib.sha256(f"numba {numba.__version__} "
                            f"boundscheck {numba.config.BOUNDSCHECK}".encode())
    for path in sources:
        digest.update(path.read_bytes())
    try:
        cache_dir = Path(dispatcher._cache.cache_path)
    except AttributeError:                   # a Numba without this attribute: leave it be
        return
    stamp = cache_dir / "fastrnn-sources.sha256"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        for path in package.glob("kernels/*.py"):
            for cached in cache_dir.glob(f"{path.stem}.*.nb[ic]"):
                cached.unlink()
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        pass
