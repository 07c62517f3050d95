"""The simple (Elman) RNN's recurrence, in plain NumPy, to be read beside
the lecture notes:

    a_t = W_H h_{t-1} + W_X x_t + b_h        h_t = tanh(a_t)

The input projection W_X x_t + b_h of every step is made beforehand
(``layers.input_projection``) and arrives as ``A``; the output layer and the
loss come after (``head``). What is left is the part that must run step by
step. Arguments shared by the three cells (``rnn``, ``lstm``, ``gru``) and
their kernel twins (``fastrnn.kernels.rnn`` ...):

* ``W_h`` (G·d, d), ``b_hn`` (the GRU's recurrent bias; empty for the others);
* ``W_hT``: W_h transposed (d, G·d), or empty (0, 0). Only the kernels use
  it, to skip making the transpose they multiply with (a Stream keeps its
  weights transposed); the reference computes with W_h, and so do the
  kernels for a step or two when W_hT is empty;
* ``A`` (N, G·d): the input projection of every row;
* ``offsets``, ``order``, ``running``, ``reverse``: see ``sequences``;
* ``state0`` (n_states, B, d): h_0 (and the LSTM's c_0) of every sequence;
* ``H`` (N, d): filled with every h_t; ``cache`` (N, c·d): what
  backpropagation needs besides H (nothing for this cell);
* ``state_last`` (n_states, B, d): filled with each sequence's last state.

Backward: ``dH`` (N, d) holds ∂L/∂h_t from above (the output layer, the
next layer); ``dA_x`` is filled with ∂L/∂a_t, the gradient of the input
projection; ``dA_h`` with that of W_h h_{t-1} (the same array here);
``dstate0`` with ∂L/∂state0.
"""
import numpy as np

from fastrnn.reference.sequences import step_rows


def forward_steps(W_h, W_hT, b_hn, A, offsets, order, running, reverse, state0, H, cache,
                  state_last):
    """h_t for every row, the running sequences together at each step."""
    h = state0[0].copy()                          # h_{t-1} of every sequence
    for t in range(len(running)):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        H[rows] = np.tanh(A[rows] + h[seqs] @ W_h.T)   # h_t = tanh(W_X x_t + b_h + W_H h_{t-1})
        h[seqs] = H[rows]
    state_last[0] = h


def backward_steps(W_h, b_hn, offsets, order, running, reverse, state0, H, cache, dH,
                   dA_x, dA_h, db_hn, dstate0):
    """Backpropagation through time: ∂L/∂a_t for every row, and ∂L/∂h_0."""
    dh_next = np.zeros_like(state0[0])           # ∂L/∂h_t through step t+1: 0 after the last
    for t in reversed(range(len(running))):
        seqs = order[:running[t]]
        rows = step_rows(offsets, seqs, t, reverse)
        dh = dH[rows] + dh_next[seqs]             # dh_t = (from above) + W_Hᵀ da_{t+1}
        dA_x[rows] = dh * (1.0 - H[rows] ** 2)    # da_t = dh_t ⊙ (1 - h_t²)
        dh_next[seqs] = dA_x[rows] @ W_h
    dstate0[0] = dh_next                          # dh_0 = W_Hᵀ da_1
