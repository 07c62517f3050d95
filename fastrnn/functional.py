"""The functional API: forward pass and loss with gradients, on either twin.

Both functions validate everything first (see ``fastrnn._validation``),
then call the same-named function of the chosen backend:
``backend="numba"`` the compiled kernels, ``backend="numpy"`` the readable
reference. Inputs are never modified.

The twins of the two cells take the same arguments but for the state: the
simple RNN carries h (``rnn_forward(..., h0, H, P)``), the LSTM carries h
and c (``lstm_forward(..., h0, c0, H, C, P)``). Here a state is therefore a
tuple of (B, d) arrays, (h,) or (h, c), spliced into the twin's arguments.
"""
import numpy as np

from fastrnn._parallel import forward_in_chunks, loss_and_grad_in_chunks, work_per_row
from fastrnn._validation import (GATES, PARAM_KEYS, check_inputs, check_lstm_state,
                                 check_params, check_state, check_targets, unpack_state,
                                 unpack_steps)
from fastrnn.backends import cell_module


def forward(params, X, h0=None, backend="numba", return_hidden=False):
    """Run the network over one sequence, a batch, or a list of sequences.

    Parameters
    ----------
    params : dict from :func:`fastrnn.init_params` (or trained).
    X : one sequence: float (T, k) input vectors or int (T,) token ids;
        a batch: float (B, T, k) or int (B, T); or a list of such sequences
        of any lengths. Integer arrays are always token ids.
    h0 : initial hidden state, (d,) for one sequence, (B, d) otherwise;
        zeros when None. For an LSTM (as in PyTorch): None or a tuple
        ``(h0, c0)`` of the initial hidden and cell states, each shaped as
        above, either of them None for zeros.
    backend : "numba" (compiled kernels) or "numpy" (the reference).
    return_hidden : also return every h_t (for an LSTM, every h_t and c_t).

    Returns
    -------
    probs : ŷ_t for every step, shaped like X's steps with a trailing m:
        (T, m), (B, T, m), or a list of (T_b, m).
    h_last : the last hidden state of each sequence, (d,) or (B, d); for an
        LSTM the tuple ``(h_last, c_last)`` with the last cell states too,
        ready to be passed back as the next call's ``h0``.
    hidden : only with ``return_hidden``: every h_t, (T, d), (B, T, d) or a
        list of (T_b, d); for an LSTM the tuple ``(hidden, cells)`` with
        every c_t shaped the same way.
    """
    net = check_params(params)
    seqs = check_inputs(X, net.n_inputs)
    states0 = _check_states(h0, net, seqs)
    run = getattr(cell_module(backend, net.cell), f"{net.cell}_forward")
    if backend == "numba":
        run = forward_in_chunks(run, len(states0), _work(net))
    N = len(seqs.data)
    S = tuple(np.empty((N, net.n_hidden)) for _ in states0)
    P = np.empty((N, net.n_outputs))
    run(*net.arrays, seqs.data, seqs.offsets, *states0, *S, P)
    last = seqs.offsets[1:] - 1
    out = (unpack_steps(P, seqs), _state_out(tuple(s[last] for s in S), net, seqs))
    if return_hidden:
        hidden = tuple(unpack_steps(s, seqs) for s in S)
        out += (hidden[0] if net.cell == "rnn" else hidden,)
    return out


def loss_and_grad(params, X, y, h0=None, backend="numba", return_dh0=False):
    """Cross-entropy loss and its gradient by backpropagation through time.

    X, h0 and backend are as in :func:`forward`. ``y`` holds the targets:
    integer class ids shaped like X's steps ((T,), (B, T) or a list of
    (T_b,)), or float distributions with a trailing axis of m (one-hot in
    the notes), each summing to 1.

    The loss is the mean over the B sequences of each sequence's
    cross-entropy summed over its steps (B = 1: exactly the loss of the
    notes); every gradient is of that loss.

    Returns ``(loss, grads)`` where ``grads`` has the keys and shapes of
    ``params``; with ``return_dh0=True``, ``(loss, grads, dh0)`` where
    ``dh0 = ∂loss/∂h0`` is shaped like h0 ((d,) or (B, d)): what truncated
    BPTT across chunks needs to pass the gradient into the previous chunk.
    For an LSTM the third element is the tuple ``(dh0, dc0)``, with
    ``dc0 = ∂loss/∂c0`` shaped the same way.
    """
    net = check_params(params)
    seqs = check_inputs(X, net.n_inputs)
    Y = check_targets(y, seqs, net.n_outputs)
    states0 = _check_states(h0, net, seqs)
    run = getattr(cell_module(backend, net.cell), f"{net.cell}_loss_and_grad")
    if backend == "numba":
        run = loss_and_grad_in_chunks(run, len(states0), _work(net))
    N = len(seqs.data)
    S = tuple(np.empty((N, net.n_hidden)) for _ in states0)
    P = np.empty((N, net.n_outputs))
    grads = [np.empty_like(net.params[key]) for key in PARAM_KEYS]
    dstates0 = tuple(np.empty_like(s) for s in states0)
    loss = float(run(*net.arrays, seqs.data, Y, seqs.offsets, *states0, *S, P, *grads, *dstates0))
    grads = dict(zip(PARAM_KEYS, grads))
    if return_dh0:
        return loss, grads, _state_out(dstates0, net, seqs)
    return loss, grads


def _check_states(h0, net, seqs):
    """The initial state as a tuple of (B, d) arrays: (h0,) or (h0, c0)."""
    if net.cell == "lstm":
        return check_lstm_state(h0, seqs, net.n_hidden)
    return (check_state(h0, seqs, net.n_hidden),)


def _state_out(states, net, seqs):
    """Per-sequence states as the caller gave them: h, or (h, c) for an LSTM."""
    states = tuple(unpack_state(s, seqs) for s in states)
    return states[0] if net.cell == "rnn" else states


def _work(net):
    return work_per_row(GATES[net.cell], net.n_inputs, net.n_hidden, net.n_outputs)
