"""The reference and the kernels mirror each other (docs/math.md: "same
function names and signatures"): for every twin module pair of
tests/_registry.MODULE_PAIRS, every function both modules define has the
same signature in both, and a public function that only one side has is
listed below with the reason. And every kernel is compiled through
fastrnn/_jit.py, the one place that sets the compile options (no fastmath,
cache off under bounds checks): no other module of the package calls
numba's compiling decorators itself."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest

import fastrnn
from _registry import MODULE_PAIRS

# Public functions only one side of a pair has, with the reason.
ONE_SIDED = {
    ("sequences", "step_rows"): "reference: the rows of step t of a set of sequences at once "
                                "(fancy indexing); the kernels walk one row at a time, step_row",
    ("sequences", "previous_rows"): "reference: h_{t-1} of every row as one array; the kernels "
                                    "read the row before in their loops",
    ("sequences", "step_row"): "kernel: the row of step t of one sequence (the reference's "
                               "step_rows for a single sequence)",
    ("lstm", "sigmoid"): "reference: NumPy's σ; the kernels' is fastrnn.kernels._math.sigmoid",
    ("head", "logsumexp"): "reference: log Σ e^z of every row; the kernels' is the private, "
                           "inlined _logsumexp of one row",
    ("optim", "sum_of_squares"): "kernel: the squared norm as a vectorisable sum (the "
                                 "reference's np.dot(grad, grad))",
}
# What may compile a function: only fastrnn/_jit.py uses these.
COMPILERS = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc", "stencil"}


def functions(module):
    """{name: signature} of the functions defined in ``module`` itself
    (a kernel by its Python function)."""
    found = {}
    for name, value in vars(module).items():
        function = getattr(value, "py_func", value)
        if inspect.isfunction(function) and function.__module__ == module.__name__:
            found[name] = inspect.signature(function)
    return found


def twins(pair):
    return (functions(importlib.import_module(f"fastrnn.reference.{pair}")),
            functions(importlib.import_module(f"fastrnn.kernels.{pair}")))


@pytest.mark.parametrize("pair", MODULE_PAIRS)
def test_shared_functions_have_the_same_signature(pair):
    reference, kernels = twins(pair)
    # Private helpers are each twin's own business (a kernel passes buffers a
    # NumPy function allocates); what the modules offer each other must match.
    different = [f"{name}: reference {reference[name]}, kernel {kernels[name]}"
                 for name in sorted(reference.keys() & kernels.keys())
                 if not name.startswith("_") and reference[name] != kernels[name]]
    assert not different, f"{pair}: " + "; ".join(different)


@pytest.mark.parametrize("pair", MODULE_PAIRS)
def test_one_sided_public_functions_are_listed(pair):
    reference, kernels = twins(pair)
    unlisted = [name for name in sorted(reference.keys() ^ kernels.keys())
                if not name.startswith("_") and (pair, name) not in ONE_SIDED]
    assert not unlisted, f"{pair}: public on one side only, and not in ONE_SIDED: {unlisted}"


def test_every_pair_has_its_public_functions_on_both_sides():
    """Each pair really is a pair: at least one public function shared."""
    for pair in MODULE_PAIRS:
        reference, kernels = twins(pair)
        assert any(not name.startswith("_") for name in reference.keys() & kernels.keys()), pair


def test_the_one_sided_list_is_current():
    """Every listed entry exists on exactly one side: a stale entry would
    excuse a function that no longer needs it."""
    for (pair, name) in ONE_SIDED:
        assert pair in MODULE_PAIRS, pair
        reference, kernels = twins(pair)
        assert (name in reference) != (name in kernels), (pair, name)


# ------------------------------------------------------------ compile options
def direct_compiles(source):
    """The lines of ``source`` that use one of numba's compiling decorators
    (``numba.njit``, ``from numba import njit``, ``numba.core.decorators.jit``...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "numba":
            if any(alias.name in COMPILERS for alias in node.names):
                found.append(node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr in COMPILERS:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in ("numba", "nb"):
                found.append(node.lineno)
    return found


def test_the_scan_finds_direct_compiles():
    """The scan itself: each spelling is found, and an ordinary use of numba is not."""
    for source in ("import numba\n@numba.njit\ndef f(x):\n    return x\n",
                   "from numba import njit\n",
                   "import numba\nf = numba.jit(nopython=True)(g)\n",
                   "import numba as nb\nf = nb.njit(g)\n",
                   "from numba.core.decorators import jit\n"):
        assert direct_compiles(source), source
    assert direct_compiles("import numba\nprint(numba.__version__)\n"
                           "from numba import types\n") == []


def test_only_jit_module_compiles_kernels():
    package = Path(fastrnn.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 20 and package / "_jit.py" in sources
    assert direct_compiles((package / "_jit.py").read_text()), "the scan misses _jit.py's own"
    offenders = {str(path.relative_to(package)): lines for path in sources
                 if path.name != "_jit.py" or path.parent != package
                 for lines in [direct_compiles(path.read_text())] if lines}
    assert not offenders, f"modules compiling with numba directly (use fastrnn._jit.kernel): " \
                          f"{offenders}"
