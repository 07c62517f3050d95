"""The functional API: forward pass and loss with gradients, on either twin.

Both functions validate everything first (see ``fastrnn._validation``),
then call the same-named function of the chosen backend:
``backend="numba"`` the compiled kernels, ``backend="numpy"`` the readable
reference. Inputs are never modified.
"""
import numpy as np

from fastrnn._validation import (PARAM_KEYS, check_inputs, check_lstm_state, check_params,
                                 check_state, check_targets, unpack_state, unpack_steps)
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
    if net.cell == "lstm":
        return _forward_lstm(net, seqs, h0, backend, return_hidden)
    h0 = check_state(h0, seqs, net.n_hidden)
    impl = cell_module(backend, net.cell)
    N = len(seqs.data)
    H = np.empty((N, net.n_hidden))
    P = np.empty((N, net.n_outputs))
    impl.rnn_forward(*net.arrays, seqs.data, seqs.offsets, h0, H, P)
    h_last = H[seqs.offsets[1:] - 1]
    out = (unpack_steps(P, seqs), unpack_state(h_last, seqs))
    if return_hidden:
        out += (unpack_steps(H, seqs),)
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
    if net.cell == "lstm":
        return _loss_and_grad_lstm(net, seqs, Y, h0, backend, return_dh0)
    h0 = check_state(h0, seqs, net.n_hidden)
    impl = cell_module(backend, net.cell)
    N = len(seqs.data)
    H = np.empty((N, net.n_hidden))
    P = np.empty((N, net.n_outputs))
    grads = {key: np.empty_like(value) for key, value in net.params.items()}
    dh0 = np.empty_like(h0)
    loss = impl.rnn_loss_and_grad(*net.arrays, seqs.data, Y, seqs.offsets, h0, H, P,
                                  *(grads[key] for key in ("W_x", "W_h", "b_h", "W_y", "b_y")),
                                  dh0)
    loss = float(loss)
    if return_dh0:
        return loss, grads, unpack_state(dh0, seqs)
    return loss, grads


def _forward_lstm(net, seqs, state, backend, return_hidden):
    """:func:`forward` for an LSTM: the state is the pair (h, c)."""
    h0, c0 = check_lstm_state(state, seqs, net.n_hidden)
    impl = cell_module(backend, net.cell)
    N = len(seqs.data)
    H = np.empty((N, net.n_hidden))
    C = np.empty((N, net.n_hidden))
    P = np.empty((N, net.n_outputs))
    impl.lstm_forward(*net.arrays, seqs.data, seqs.offsets, h0, c0, H, C, P)
    last = seqs.offsets[1:] - 1
    out = (unpack_steps(P, seqs), (unpack_state(H[last], seqs), unpack_state(C[last], seqs)))
    if return_hidden:
        out += ((unpack_steps(H, seqs), unpack_steps(C, seqs)),)
    return out


def _loss_and_grad_lstm(net, seqs, Y, state, backend, return_dh0):
    """:func:`loss_and_grad` for an LSTM: the state is the pair (h, c)."""
    h0, c0 = check_lstm_state(state, seqs, net.n_hidden)
    impl = cell_module(backend, net.cell)
    N = len(seqs.data)
    H = np.empty((N, net.n_hidden))
    C = np.empty((N, net.n_hidden))
    P = np.empty((N, net.n_outputs))
    grads = {key: np.empty_like(value) for key, value in net.params.items()}
    dh0 = np.empty_like(h0)
    dc0 = np.empty_like(c0)
    loss = impl.lstm_loss_and_grad(*net.arrays, seqs.data, Y, seqs.offsets, h0, c0, H, C, P,
                                   *(grads[key] for key in PARAM_KEYS), dh0, dc0)
    loss = float(loss)
    if return_dh0:
        return loss, grads, (unpack_state(dh0, seqs), unpack_state(dc0, seqs))
    return loss, grads
