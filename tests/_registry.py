"""One registry for the generic battery: the twin module pairs, the
architectures, the input forms and the heads, and the factories that make a
problem of any combination. A new cell, head or input form is a row here,
not a new test file (numbagg's COMPARISONS, Bottleneck's get_functions).
"""
import itertools
from typing import NamedTuple

import numpy as np

import fastrnn

# Twin module pairs: fastrnn.reference.<name> and fastrnn.kernels.<name>.
MODULE_PAIRS = ("layout", "sequences", "layers", "rnn", "lstm", "gru", "head", "dropout",
                "network", "optim", "train")

CELLS = ("rnn", "lstm", "gru")
ARCHITECTURES = [(cell, layers, bidirectional) for cell in CELLS for layers in (1, 2, 3)
                 for bidirectional in (False, True)]
SHALLOW = [a for a in ARCHITECTURES if a[1] == 1 and not a[2]]
FORMS = ("single_dense", "single_ids", "batch_dense", "batch_ids", "list_dense", "list_ids",
         "h0")
HEADS = (("cross_entropy", "every_step"), ("cross_entropy", "last_step"),
         ("squared_error", "every_step"), ("squared_error", "last_step"))
WEIGHTS = (None, "sequence", "step")
BACKENDS = ("numba", "numpy")

K, D, M = 3, 4, 3                # k ≠ d; m = k so that token ids can be targets too


def arch_id(arch):
    cell, layers, bidirectional = arch
    return f"{cell}-L{layers}{'-bi' if bidirectional else ''}"


def head_id(head):
    return f"{'ce' if head[0] == 'cross_entropy' else 'se'}-{'last' if head[1] == 'last_step' else 'every'}"


class Problem(NamedTuple):
    params: dict
    X: object
    y: object
    kwargs: dict                 # h0, loss, output, sample_weight
    lengths: list                # of the sequences, in order
    form: str
    seq_weight: object           # the weights as arrays: (B,) or None,
    step_weight: object          # a list of (T_b,) or None


def make_params(arch, rng, scale=0.5, k=K, d=D, m=M):
    """Parameters of an architecture, every entry N(0, scale²)."""
    cell, layers, bidirectional = arch
    params = fastrnn.init_params(k, d, m, cell=cell, n_layers=layers,
                                 bidirectional=bidirectional, random_state=rng)
    return {key: rng.normal(0, scale, value.shape) for key, value in params.items()}


def _targets(rng, lead, loss, m, class_ids):
    if loss == "cross_entropy":
        if class_ids:
            return rng.integers(0, m, size=lead)
        return rng.dirichlet(np.ones(m), size=lead)
    return rng.normal(0, 1, size=lead + (m,))


def make_problem(arch, form, head, weights=None, seed=0, scale=0.5):
    """A small random problem of one architecture, input form and head."""
    loss, output = head
    rng = np.random.default_rng([seed, ARCHITECTURES.index(arch), FORMS.index(form),
                                 HEADS.index(head), WEIGHTS.index(weights)])
    params = make_params(arch, rng, scale)
    ids = form.endswith("ids")
    kind = form.split("_")[0]
    if kind == "single":
        lengths = [int(rng.integers(1, 6))]
    elif kind in ("batch", "h0"):
        lengths = [int(rng.integers(1, 5))] * int(rng.integers(2, 4))
    else:
        lengths = [int(n) for n in rng.integers(1, 6, int(rng.integers(2, 5)))]

    def inputs(T):
        return rng.integers(0, K, T) if ids else rng.normal(0, 1, (T, K))

    if kind == "single":
        X = inputs(lengths[0])
    elif kind in ("batch", "h0"):
        X = np.stack([inputs(n) for n in lengths])
    else:
        X = [inputs(n) for n in lengths]
    last = output == "last_step"
    class_ids = bool(rng.random() < 0.5)          # else distributions (cross-entropy)
    if last:
        y = _targets(rng, () if kind == "single" else (len(lengths),), loss, M, class_ids)
    elif kind == "list":
        y = [_targets(rng, (n,), loss, M, class_ids) for n in lengths]
    else:
        y = _targets(rng, X.shape[:2] if kind != "single" else (lengths[0],), loss, M,
                     class_ids)
    kwargs = {"loss": loss, "output": output}
    if form == "h0":
        kwargs["h0"] = make_state(arch, rng, len(lengths))
    seq_weight = step_weight = None
    if weights == "sequence" or (weights == "step" and last):
        seq_weight = rng.uniform(0.2, 2.0, len(lengths))
        kwargs["sample_weight"] = float(seq_weight[0]) if kind == "single" else seq_weight
    elif weights == "step":
        step_weight = [rng.uniform(0, 2, n) for n in lengths]
        kwargs["sample_weight"] = (step_weight if kind == "list" else step_weight[0]
                                   if kind == "single" else np.stack(step_weight))
    return Problem(params, X, y, kwargs, lengths, form, seq_weight, step_weight)


def make_state(arch, rng, B):
    """A random initial state of B sequences in the public form."""
    cell, layers, bidirectional = arch
    deep = layers > 1 or bidirectional
    shape = ((layers * (2 if bidirectional else 1),) if deep else ()) + (B, D)
    h = rng.normal(0, 0.5, shape)
    return (h, rng.normal(0, 0.5, shape)) if cell == "lstm" else h


def combinations(*axes):
    return list(itertools.product(*axes))
