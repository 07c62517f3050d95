"""Check a gradient against central finite differences.

``fastrnn.gradcheck(params, X, y)`` compares ``fastrnn.loss_and_grad``'s
analytic gradient with (L(θ + ε e_i) − L(θ − ε e_i)) / 2ε, coordinate by
coordinate, and reports the worst error of each array and where it is. Give
it your own ``loss_and_grad`` (a function with fastrnn's signature, taking
at least ``params, X, y`` and returning ``(loss, grads)``) to check your own
backpropagation through time: the tests of fastrnn use this function too.

Error per coordinate, analytic a, numerical n:

    err = |a − n| / max(|a| + |n|, floor),   floor = 1e-3 · max(1, |L|)

Every coordinate with |a| + |n| ≥ floor is held to a genuine relative
error; smaller ones (and exact zeros, say the W_x columns of token ids that
never occur) to an absolute error. Why a floor at all: a central
difference of a float64 loss at ε = 1e-6 carries rounding noise of about
ulp(L) / 2ε (measured: about 3e-10 |L|), so a purely relative test of a
gradient near 0 would test round-off, not the gradient; the floor leaves a
margin of about 3 over that noise at the bound 1e-6. ``docs/math.md`` gives the bound fastrnn holds
itself to: err ≤ 1e-6 at ε ≈ 1e-6, float64.
"""
from typing import Any, Callable, NamedTuple

import numpy as np

from fastrnn._typing import Inputs, Params, RandomState, State
from fastrnn._validation import check_random_state


class ArrayCheck(NamedTuple):
    key: str
    worst: float                 # the largest error of the array's checked coordinates
    where: tuple                 # the index of that coordinate
    analytic: float              # a and n there
    numerical: float
    checked: int                 # coordinates checked
    relative: int                # of which held to a relative error (|a| + |n| ≥ floor)


class GradcheckReport:
    """What :func:`gradcheck` found: ``arrays`` (one :class:`ArrayCheck` per
    key), ``worst`` over all of them, ``ok`` (worst ≤ tolerance); printing it
    gives a table."""

    def __init__(self, arrays, loss, eps, tolerance):
        self.arrays, self.loss, self.eps, self.tolerance = arrays, loss, eps, tolerance

    @property
    def worst(self) -> float:
        return max((a.worst for a in self.arrays.values()), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst <= self.tolerance

    def __str__(self):
        lines = [f"gradcheck: loss {self.loss:.6g}, central differences with eps={self.eps:g}, "
                 f"tolerance {self.tolerance:g}",
                 f"  {'array':<16} {'worst error':>12}  {'at':<12} {'analytic':>13} "
                 f"{'numerical':>13}  {'checked':>8}"]
        for a in self.arrays.values():
            lines.append(f"  {a.key:<16} {a.worst:12.2e}  {str(a.where):<12} {a.analytic:13.6e} "
                         f"{a.numerical:13.6e}  {a.checked:>8}")
        lines.append(f"  worst: {self.worst:.2e} ({'ok' if self.ok else 'FAILED'})")
        return "\n".join(lines)

    def __repr__(self):
        return f"<GradcheckReport worst={self.worst:.2e} ok={self.ok}>"


def gradcheck(params: Params, X: Inputs, y: Inputs, h0: State = None, *,
              loss_and_grad: Callable[..., tuple[Any, ...]] | None = None, eps: float = 1e-6,
              tolerance: float = 1e-6, max_coordinates: int | None = None,
              random_state: RandomState = None, **options: Any) -> "GradcheckReport":
    """Compare ``loss_and_grad(params, X, y, h0, **options)``'s gradient
    with central finite differences of its loss, for every array of params.

    ``loss_and_grad``: the function to check (default
    ``fastrnn.loss_and_grad``); ``options`` go to it (``loss``, ``output``,
    ``sample_weight``, ``backend``...). ``max_coordinates``: check at most
    this many coordinates of each array, drawn with ``random_state``
    (default: all of them). Returns a :class:`GradcheckReport`.
    """
    if loss_and_grad is None:
        from fastrnn.functional import loss_and_grad
    rng = check_random_state(random_state)
    if h0 is not None:
        options["h0"] = h0
    base = {key: np.array(value, dtype=np.float64) for key, value in params.items()}
    value, grads = loss_and_grad(base, X, y, **options)[:2]
    floor = 1e-3 * max(1.0, abs(value))
    arrays = {}
    for key in base:
        array = base[key]
        analytic = np.asarray(grads[key], dtype=np.float64)
        if analytic.shape != array.shape:
            raise ValueError(f"loss_and_grad: the gradient of {key!r} has shape "
                             f"{analytic.shape}, the parameter {array.shape}")
        indices = list(np.ndindex(array.shape))
        if max_coordinates is not None and len(indices) > max_coordinates:
            picked = rng.choice(len(indices), size=max_coordinates, replace=False)
            indices = [indices[i] for i in np.sort(picked)]
        worst = (0.0, (), 0.0, 0.0)
        relative = 0
        for index in indices:
            saved = array[index]
            array[index] = saved + eps
            up = loss_and_grad(base, X, y, **options)[0]
            array[index] = saved - eps
            down = loss_and_grad(base, X, y, **options)[0]
            array[index] = saved
            numerical = (up - down) / (2 * eps)
            a = float(analytic[index])
            scale = abs(a) + abs(numerical)
            relative += scale >= floor
            err = abs(a - numerical) / max(scale, floor)
            if err > worst[0] or not np.isfinite(err):
                worst = (err, tuple(int(i) for i in index), a, numerical)
        arrays[key] = ArrayCheck(key, worst[0], worst[1], worst[2], worst[3], len(indices),
                                 int(relative))
    return GradcheckReport(arrays, float(value), eps, tolerance)
