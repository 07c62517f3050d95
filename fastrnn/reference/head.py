"""The output layer and the loss: the network's head. Twin of
``fastrnn.kernels.head``.

    z_t = W_Y h_t + b_y          ŷ_t = softmax(z_t)  or  ŷ_t = z_t

at every step (``last_step=False``) or only at each sequence's last step
(``last_step=True``, many-to-one), where h_t is the last layer's output
(bidirectional: [h_t^fwd; h_t^rev], and at the last step each direction's
final state, [h_{T_b}^fwd; h_1^rev]). ``H`` is that layer's output, one
block per direction (D, N, d); ``Z`` has a row per output: (N, m) or (B, m).

Losses (``loss``, codes of ``fastrnn._codes``), each with ∂ℓ/∂z = ŷ - y:

* CROSS_ENTROPY: ℓ = -Σ_c y_c log softmax(z)_c, computed from the logits
  as (log Σ_j e^{z_j}) Σ_c y_c - Σ_c y_c z_c, so a target whose probability
  underflows still gives a finite loss. Targets ``Y``: int64 class ids (R,)
  or float distributions (R, m).
* SQUARED_ERROR: ℓ = ½ ‖z - y‖², targets float (R, m).

Each output row's loss is weighted by a factor (:func:`row_factors`): the
weight of its sequence, normalised by the caller (1/B without weights),
times the weight of its step when there are per-step weights.
"""
import numpy as np

from fastrnn._codes import CROSS_ENTROPY


def _features(H, offsets, last_step):
    """The output layer's input for every output row: [h_fwd; h_rev]."""
    if not last_step:
        return np.hstack(H)
    ends = [offsets[1:] - 1, offsets[:-1]]        # forward: the last row; reverse: the first
    return np.hstack([H[j][ends[j]] for j in range(H.shape[0])])


def output_layer(H, W_y, W_yT, b_y, offsets, last_step, Z):
    """z = W_Y h + b_y for every output row. (W_yT, W_y transposed or empty,
    is for the kernels: see ``rnn``'s W_hT.)"""
    Z[:] = _features(H, offsets, last_step) @ W_y.T + b_y


def row_factors(scale, step_weight, offsets, last_step, factors):
    """The weight of each output row's loss: scale[b] for the row's sequence
    b, times step_weight[row] unless step_weight is empty."""
    if last_step:
        factors[:] = scale
    else:
        factors[:] = np.repeat(scale, np.diff(offsets))
        if step_weight.size:
            factors *= step_weight


def logsumexp(Z):
    """log Σ_j e^{z_j} of every row, stably (the row's largest z taken out)."""
    z_max = Z.max(axis=1)
    return z_max + np.log(np.exp(Z - z_max[:, None]).sum(axis=1))


def probabilities(Z, loss):
    """ŷ in place: softmax(z) of every row, or z itself."""
    if loss == CROSS_ENTROPY:
        Z[:] = np.exp(Z - logsumexp(Z)[:, None])


def loss_and_delta(Z, Y, factors, loss):
    """Σ_rows factor · ℓ(z, y); Z becomes ∂L/∂z = factor (ŷ - y)."""
    if loss == CROSS_ENTROPY:
        lse = logsumexp(Z)
        P = np.exp(Z - lse[:, None])
        if Y.ndim == 1:
            rows = np.arange(len(Y))
            losses = lse - Z[rows, Y]
            P[rows, Y] -= 1.0
        else:
            mass = Y.sum(axis=1)                 # 1, up to rounding
            losses = lse * mass - (Y * Z).sum(axis=1)
            P = P * mass[:, None] - Y
        Z[:] = P * factors[:, None]
    else:
        E = Z - Y
        losses = 0.5 * (E ** 2).sum(axis=1)
        Z[:] = E * factors[:, None]
    return float(factors @ losses)


def output_backward(dZ, H, W_y, offsets, last_step, dW_y, db_y, dH):
    """dW_Y = Σ dz hᵀ, db_y = Σ dz; dH (D, N, d) is set to W_Yᵀ dz at the
    rows that have an output (0 at the others)."""
    dW_y[:] = dZ.T @ _features(H, offsets, last_step)
    db_y[:] = dZ.sum(axis=0)
    d = H.shape[2]
    dF = dZ @ W_y                               # ∂L/∂[h_fwd; h_rev]
    if last_step:
        dH[:] = 0.0
        ends = [offsets[1:] - 1, offsets[:-1]]
        for j in range(H.shape[0]):
            dH[j][ends[j]] = dF[:, j * d:(j + 1) * d]
    else:
        for j in range(H.shape[0]):
            dH[j] = dF[:, j * d:(j + 1) * d]
