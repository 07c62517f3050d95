"""The functional API: forward pass and loss with gradients, on either twin.

Both functions validate everything first (see ``fastrnn._validation``),
then call the network function of the chosen backend: ``backend="numba"``
the compiled kernels, ``backend="numpy"`` the readable reference. Inputs
are never modified.
"""
import functools
from typing import Any

import numpy as np

from fastrnn._cells import CELLS
from fastrnn._codes import CROSS_ENTROPY
from fastrnn._parallel import (forward_in_chunks, loss_and_grad_in_chunks, one_chunk,
                               work_per_row)
from fastrnn._layout import unflatten
from fastrnn._typing import Inputs, Params, State
from fastrnn._validation import (Head, check_bool, check_head, check_inputs, check_params,
                                 check_sample_weight, check_states, check_targets, sequence_scale,
                                 states_out,
                                 unpack_sequences, unpack_steps)
from fastrnn.backends import check_backend, network_module
from fastrnn.kernels._checks import all_finite
from fastrnn.kernels._linalg import load_products


def forward(params: Params, X: Inputs, h0: State = None, backend: str = "numba",
            return_hidden: bool = False, loss: str = "cross_entropy", output: str = "every_step",
            *, return_gates: bool = False) -> tuple[Any, ...]:
    """Run the network over one sequence, a batch, or a list of sequences.

    Parameters
    ----------
    params : dict from :func:`fastrnn.init_params` (or trained); its keys
        and shapes say the cell, the layers and the directions, and its
        dtype the precision: float32 arrays compute in float32 (inputs are
        converted), anything else in float64.
    X : one sequence: float (T, k) input vectors or int (T,) token ids;
        a batch: float (B, T, k) or int (B, T); or a list of such sequences
        of any lengths. Integer arrays are always token ids.
    h0 : initial hidden state, (d,) for one sequence, (B, d) otherwise;
        zeros when None. A network with several layers or two directions
        takes (L·D, d) or (L·D, B, d), PyTorch's order: layer by layer,
        forward before reverse. For an LSTM (as in PyTorch): None or a tuple
        ``(h0, c0)`` of the initial hidden and cell states, each shaped as
        above, either of them None for zeros.
    backend : "numba" (compiled kernels) or "numpy" (the reference).
    return_hidden : also return every h_t of the last layer (for an LSTM,
        every h_t and c_t); bidirectional: both directions side by side.
    loss : "cross_entropy" (a softmax output: ŷ_t are probabilities) or
        "squared_error" (an identity output: ŷ_t = W_Y h_t + b_y).
    output : "every_step" (ŷ_t at every step) or "last_step" (ŷ only at each
        sequence's last step: many-to-one).

    Returns
    -------
    probs : ŷ for every output: at every step, shaped like X's steps with a
        trailing m ((T, m), (B, T, m), or a list of (T_b, m)); at the last
        step, (m,) for one sequence, (B, m) otherwise.
    h_last : the last state of each sequence, shaped like h0; for an LSTM
        the tuple ``(h_last, c_last)``, ready to be passed back as the next
        call's ``h0``.
    hidden : only with ``return_hidden``: every h_t of the last layer,
        (T, D·d), (B, T, D·d) or a list of (T_b, D·d); for an LSTM the tuple
        ``(hidden, cells)`` with every c_t shaped the same way.
    gates : only with ``return_gates`` (the LSTM and the GRU): a dict of the
        last layer's gate activations at every step, each shaped like
        ``hidden``: "f", "i", "o", "g" for the LSTM, "r", "u", "n" for the
        GRU (docs/math.md gives their equations).
    """
    net = check_params(params)
    head = check_head(loss, output)
    seqs = check_inputs(X, net.n_inputs, dtype=net.dtype)
    if check_bool(return_gates, "return_gates") and not CELLS[net.cell].gates:
        raise ValueError("return_gates: the simple RNN has no gates; its h_t are every value "
                         "it computes (return_hidden=True)")
    return run_forward(net, seqs, check_states(h0, net, seqs), check_backend(backend), head,
                       check_bool(return_hidden, "return_hidden"), return_gates)


def run_forward(net, seqs, state0, backend, head=Head(CROSS_ENTROPY, False), return_hidden=False,
                return_gates=False):
    """:func:`forward` on validated arguments."""
    a = net.architecture
    N, B = seqs.n_rows, seqs.n_sequences
    run = network_module(backend).forward
    if backend == "numba":
        load_products(net.dtype, gradients=False)
        work = work_per_row(net)
        if not one_chunk(B, N, work):            # (one step of streaming: skip the wrapper)
            run = forward_in_chunks(run, work)
    Hs, caches = _layer_buffers(net, N)
    state_last = np.empty_like(state0)
    P = np.empty((B if head.last_step else N, a.n_outputs), net.dtype)
    with _overflow_reported(backend):
        run(CELLS[a.cell].tag, net.theta, net.theta[:0], net.table, seqs.data, seqs.offsets,
            state0, head.loss, head.last_step, Hs, caches, state_last, P)
    _require_finite(P, "the outputs")
    probs = unpack_sequences(P, seqs) if head.last_step else unpack_steps(P, seqs)
    out = (probs, states_out(state_last, net, seqs))
    if return_hidden:
        hidden = unpack_steps(_side_by_side(Hs[-1]), seqs)
        if a.cell == "lstm":
            d = a.n_hidden
            cells = unpack_steps(_side_by_side(caches[-1][:, :, 4 * d:]), seqs)
            hidden = (hidden, cells)
        out += (hidden,)
    if return_gates:
        d = a.n_hidden
        last = caches[-1]
        out += ({name: unpack_steps(_side_by_side(last[:, :, j * d:(j + 1) * d]), seqs)
                 for j, name in enumerate(CELLS[a.cell].gates)},)
    return out


def _layer_buffers(net, n_rows):
    """Every layer's hidden states and cached gates for ``n_rows`` rows, as
    the kernels' shape contract has them: (L, D, N, d) and (L, D, N, c·d)."""
    hidden, cached = _buffer_shapes(net.architecture, n_rows)
    return np.empty(hidden, net.dtype), np.empty(cached, net.dtype)


@functools.lru_cache(maxsize=256)
def _buffer_shapes(a, n_rows):
    shape = (a.n_layers, a.n_directions, n_rows)
    return shape + (a.n_hidden,), shape + (CELLS[a.cell].cache_blocks * a.n_hidden,)


def _side_by_side(blocks):
    """(D, N, w) blocks as (N, D·w): the directions side by side."""
    return np.ascontiguousarray(np.concatenate(list(blocks), axis=1)) if len(blocks) > 1 \
        else blocks[0]


def loss_and_grad(params: Params, X: Inputs, y: Inputs, h0: State = None,
                  backend: str = "numba", return_dh0: bool = False, loss: str = "cross_entropy",
                  output: str = "every_step", sample_weight: Inputs | None = None, *,
                  return_dX: bool = False) -> tuple[Any, ...]:
    """The loss and its gradient by backpropagation through time.

    X, h0, backend, loss and output are as in :func:`forward` (everything is
    computed in the parameters' precision, float64 or float32, with the loss
    summed in float64). ``y`` holds
    the targets, one per output of :func:`forward`:

    * cross_entropy: integer class ids shaped like the outputs ((T,), (B, T)
      or a list of (T_b,) at every step; (), (B,) at the last step), or
      float distributions with a trailing axis of m (one-hot in the notes),
      each summing to 1;
    * squared_error: real values with a trailing axis of m, which may be left
      out when m = 1 ((T,) or (T, m), (B, T) or (B, T, m), lists of these;
      (), (m,), (B,) or (B, m) at the last step).

    Each sequence's loss is the sum of its outputs' losses: −Σ y log ŷ
    (cross-entropy, computed from the logits) or ½‖ŷ − y‖². The loss is their
    mean over the B sequences (B = 1: exactly the loss of the notes), or with
    ``sample_weight``:

    * one weight per sequence, (B,) (a number for one sequence):
      Σ_b w_b L_b / Σ_b w_b;
    * one weight per step, shaped like X's steps (every step only): each
      step's loss times its weight, then the mean over sequences, not
      renormalised (a 0/1 mask drops steps).

    Weights are >= 0 and not all 0. Every gradient is of that loss.

    Returns ``(loss, grads)`` where ``grads`` has the keys and shapes of
    ``params``. ``return_dh0=True`` appends ``dh0 = ∂loss/∂h0``, shaped like
    h0 (for an LSTM the tuple ``(dh0, dc0)``): what truncated BPTT across
    chunks needs to pass the gradient into the previous chunk.
    ``return_dX=True`` appends ``dX = ∂loss/∂X`` for float inputs, shaped
    like X (what a layer below would need); token ids have none: the
    columns of ``grads["W_x"]`` are the gradients of the inputs they pick.
    """
    net = check_params(params)
    head = check_head(loss, output)
    seqs = check_inputs(X, net.n_inputs, dtype=net.dtype)
    Y = check_targets(y, seqs, net.n_outputs, head, dtype=net.dtype)
    seq_weight, step_weight = check_sample_weight(sample_weight, seqs, head)
    state0 = check_states(h0, net, seqs)
    backend = check_backend(backend)
    return_dh0 = check_bool(return_dh0, "return_dh0")
    if check_bool(return_dX, "return_dX") and seqs.is_ids:
        raise ValueError("return_dX: X holds token ids, which have no gradient; the columns "
                         "of grads['W_x'] are the gradients of the inputs they pick")
    value, grad, dstate0, dX = run_loss_and_grad(net, seqs, Y, sequence_scale(seq_weight),
                                                 step_weight, state0,
                                                 backend, head, return_dX)
    out = (value, unflatten(grad, net.architecture))
    if return_dh0:
        out += (states_out(dstate0, net, seqs),)
    if return_dX:
        out += (unpack_steps(dX, seqs),)
    return out


def run_loss_and_grad(net, seqs, Y, scale, step_weight, state0, backend, head,
                      return_dX=False):
    """:func:`loss_and_grad` on validated arguments: (loss, flat grad,
    dstate0 (L·D, n_states, B, d), dX (N, k) or None)."""
    a = net.architecture
    N = seqs.n_rows
    run = network_module(backend).loss_and_grad
    if backend == "numba":
        load_products(net.dtype, gradients=True)
        run = loss_and_grad_in_chunks(run, work_per_row(net))
    Hs, caches = _layer_buffers(net, N)
    grad = np.empty_like(net.theta)
    dstate0 = np.empty_like(state0)
    dX = np.empty((N if return_dX else 0, a.n_inputs), net.dtype)
    with _overflow_reported(backend):
        value = run(CELLS[a.cell].tag, net.theta, net.table, seqs.data, Y, seqs.offsets, scale,
                    step_weight, state0, head.loss, head.last_step, 0.0, np.uint64(0), 0, Hs,
                    caches, np.empty_like(state0), grad, dstate0, dX)
    _require_finite(np.array([value]), "the loss")
    _require_finite(grad, "the gradient")
    return float(value), grad, dstate0, (dX if return_dX else None)


class _overflow_reported:
    """Overflow inside the network is reported by both twins alike, as a
    FloatingPointError that says what to do (NumPy's own warnings about it
    would only be noise). A class, not a generator: entered on every call,
    including one-step streaming calls, where contextlib's machinery
    costs a microsecond."""

    def __init__(self, backend):
        self._quiet = np.errstate(all="ignore") if backend == "numpy" else None

    def __enter__(self):
        if self._quiet is not None:
            self._quiet.__enter__()

    def __exit__(self, kind, exc, traceback):
        if self._quiet is not None:
            self._quiet.__exit__(kind, exc, traceback)
        if kind is FloatingPointError:
            raise FloatingPointError(f"X: {exc} inside the network; the inputs or the "
                                     f"parameters are too large (scale them down)") from None
        return False


def _require_finite(values, what):
    """Finite inputs and parameters can still overflow inside the network
    (inputs near 1e308, say): refuse the result rather than return inf or nan."""
    if not all_finite(values.reshape(-1)):
        raise FloatingPointError(f"X: {what} overflowed to inf or nan inside the network; the "
                                 f"inputs or the parameters are too large (scale them down)")
