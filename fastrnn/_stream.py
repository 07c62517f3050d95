"""Streaming inference, one step at a time: :class:`Stream`, what
``FastRNN.stream`` and ``FastRNNRegressor.stream`` return.

``predict_proba(x, h0=state, return_state=True)`` streams too, but every
call validates the network and the state again, packs the input as a
sequence and allocates its buffers: more than half of a small model's step. A
Stream does all of that once, when it is made; each step checks only the
new input (in full: a bad one is refused with the message predict_proba
would give, or, for a shape that is not one step's, one that says what a
step is) and runs the same kernel on buffers it keeps.

The kernel multiplies one row by a weight matrix as the matrix is stored,
a scalar sum per output, unless it is given the matrix transposed: then
the sums run across contiguous outputs, vectorised. A Stream copies the
parameters once, transposed too (``fastrnn._layout.transposed``), and
passes both. The sums are taken in the same order either way, so its
outputs are predict_proba's, bit for bit.
"""
from typing import Any

import numpy as np

from fastrnn._cells import CELLS
from fastrnn._layout import transposed
from fastrnn._typing import ArrayLike, State
from fastrnn._validation import (Sequences, as_real_array, check_inputs, check_states,
                                 states_out)
from fastrnn.backends import network_module
from fastrnn.functional import _layer_buffers, _overflow_reported, _require_finite
from fastrnn.kernels._checks import all_finite, ids_within
from fastrnn.kernels._linalg import load_products


class Stream:
    """The state of one stream (or of ``n_streams`` in lock-step) through a
    fitted model, advanced one step per :meth:`step`.

    Made by ``model.stream(h0=None, n_streams=None)``. ``h0``: the state to
    start from, in ``predict_proba``'s form for one sequence (or for
    ``n_streams`` sequences); None for zeros.

    The stream computes with a copy of the model's parameters as they were
    when it was made (a later ``fit`` or edit of ``params_`` does not reach
    it: make a new stream), and keeps their matrices transposed as well, so
    a step multiplies with vectorised products (twice the memory of the
    parameters). A step runs on one thread, whatever ``n_streams``. Not for
    use by two threads at once: each step writes the stream's own buffers."""

    def __init__(self, net: Any, head: Any, backend: str, h0: State = None,
                 n_streams: int | None = None, squeeze: bool = False) -> None:
        a = net.architecture
        if a.bidirectional:
            raise ValueError("stream: a bidirectional model reads every sequence from both "
                             "ends; it cannot run one step at a time")
        if n_streams is not None and (isinstance(n_streams, bool) or
                                      not isinstance(n_streams, (int, np.integer))
                                      or n_streams < 1):
            raise ValueError(f"n_streams: expected None (one stream) or an integer >= 1, "
                             f"got {n_streams!r}")
        B = 1 if n_streams is None else int(n_streams)
        self._net, self._head, self._backend, self._squeeze = net, head, backend, squeeze
        self._single = n_streams is None
        self._k, self._dtype = a.n_inputs, net.dtype
        self._seqs = Sequences(np.empty(B, np.int64), np.arange(B + 1, dtype=np.int64),
                               "single" if self._single else "batch")
        self._ids = self._seqs.data                 # a step's token ids, filled in place
        self._vectors = (B, a.n_inputs)             # a step's vectors, as the kernel takes them
        self._id_shape, self._vector_shape = ((), (a.n_inputs,)) if self._single else \
            ((B,), self._vectors)
        self._run = network_module(backend).forward
        if backend == "numba":
            load_products(net.dtype, gradients=False)
        self._out = np.empty((B, a.n_outputs), net.dtype)
        self._out_flat = self._out.reshape(-1)
        Hs, caches = _layer_buffers(net, B)
        # The parameters as they are now, and their matrices transposed: the
        # kernel's products of one row multiply with those (vectorised)
        # instead of reading the matrices row by row.
        theta = net.theta.copy()
        thetaT = transposed(theta, a)
        # forward's arguments; each step sets X (4), the state (6) and the next state (11)
        self._arguments = [CELLS[a.cell].tag, theta, thetaT, net.table, None,
                           self._seqs.offsets, None, head.loss, head.last_step, Hs, caches,
                           None, self._out]
        self.reset(h0)

    def reset(self, h0: State = None) -> None:
        """Start again from ``h0`` (None: zeros)."""
        self._state = check_states(h0, self._net, self._seqs)
        self._next = np.empty_like(self._state)

    @property
    def state(self) -> State:
        """The state after the last step, in ``predict_proba``'s form (a
        copy: pass it as ``h0`` to a stream or to ``predict_proba``)."""
        out = states_out(self._state, self._net, self._seqs)
        return tuple(np.array(part) for part in out) if isinstance(out, tuple) \
            else np.array(out)

    def step(self, x: ArrayLike) -> Any:
        """Advance by one step with input ``x`` and return that step's
        output: FastRNN's class probabilities (m,), FastRNNRegressor's
        prediction ((m,), or a number when m = 1); with ``n_streams`` = B,
        one row per stream.

        ``x``: a token id or an input vector (k,); with ``n_streams``, B ids
        (B,) or B vectors (B, k)."""
        X = self._checked_fast(x)
        if X is None:
            X = self._checked(x)
        args, out = self._arguments, self._out
        args[4], args[6], args[11] = X, self._state, self._next
        with _overflow_reported(self._backend):
            self._run(*args)
        if not all_finite(self._out_flat):
            _require_finite(out, "the outputs")
        self._state, self._next = self._next, self._state
        if self._single:
            return out[0, 0] if self._squeeze else out[0].copy()
        return out[:, 0].copy() if self._squeeze else out.copy()

    def _checked_fast(self, x):
        """The input as the kernel takes it, for the common well-formed
        inputs, checked; None for anything else (left to :meth:`_checked`)."""
        if type(x) is np.ndarray:
            flags = x.flags
            # Only the array types the checks and the kernel were compiled
            # for: a read-only, unaligned or strided one would compile them
            # again (seconds); _checked copies it.
            if not (flags.c_contiguous and flags.writeable and flags.aligned):
                return None
            if x.dtype == self._dtype and x.shape == self._vector_shape:
                return x.reshape(self._vectors) if all_finite(x.reshape(-1)) else None
            if x.dtype == np.int64 and x.shape == self._id_shape and \
                    ids_within(x.reshape(-1), self._k):
                self._ids[:] = x
                return self._ids
            return None
        if self._single and (type(x) is int or (isinstance(x, np.integer) and
                                                x.dtype.kind in "iu")) and 0 <= x < self._k:
            self._ids[0] = x
            return self._ids
        return None

    def _checked(self, x):
        """Any input, validated as predict_proba validates a sequence of
        one step (so a bad one gets the same message)."""
        B, k = self._vectors
        array = as_real_array(x, "x")
        ids = array.dtype.kind in "iu"
        step = () if self._single else (B,)
        if array.shape != (step if ids else step + (k,)):
            what = "a token id or a vector (k,)" if self._single else \
                f"{B} token ids ({B},) or {B} vectors ({B}, k)"
            raise ValueError(f"x: expected {what} for one step, with k = {k}; got shape "
                             f"{array.shape}")
        as_steps = array.reshape((1,) if self._single and ids else
                                 (1, k) if self._single else (B, 1) if ids else (B, 1, k))
        data = check_inputs(as_steps, k, name="x", dtype=self._dtype).data
        if ids:
            self._ids[:] = data
            return self._ids
        return data
