"""The reference and the kernels mirror each other: every function the two
modules of a pair both define has the same signature in both, and what only
one side has is a helper that says why (a private name, or NumPy spelling
something the kernels spell as loops)."""
import importlib
import inspect

import pytest

PAIRS = ["rnn", "lstm", "optim", "train"]
# Functions only one side has, with the reason.
ONE_SIDED = {
    ("rnn", "softmax"): "reference: NumPy's row-wise softmax; the kernel's is softmax_rows, in place",
    ("rnn", "softmax_rows"): "kernel: the softmax in place, row by row",
    ("lstm", "sigmoid"): "reference: NumPy's sigmoid; the kernels use fastrnn.kernels._math",
    ("train", "run_epochs"): "reference: the loop shared with the threaded trainer",
    ("optim", "sum_of_squares"): "kernel: the squared norm as a vectorisable sum (np.dot's job)",
}


def functions(module):
    found = {}
    for name, value in vars(module).items():
        function = getattr(value, "py_func", value)
        if inspect.isfunction(function) and function.__module__ == module.__name__:
            found[name] = inspect.signature(function)
    return found


@pytest.mark.parametrize("pair", PAIRS)
def test_twin_modules_mirror_each_other(pair):
    reference = functions(importlib.import_module(f"fastrnn.reference.{pair}"))
    kernels = functions(importlib.import_module(f"fastrnn.kernels.{pair}"))
    for name in reference.keys() & kernels.keys():
        assert reference[name] == kernels[name], f"{pair}.{name}: {reference[name]} vs {kernels[name]}"
    for name in reference.keys() ^ kernels.keys():
        assert name.startswith("_") or (pair, name) in ONE_SIDED, \
            f"{pair}.{name} exists on one side only"
