"""Independent references, written once: PyTorch float64 autograd through
fastrnn's converters, and the notes' simple RNN as a hand loop.

PyTorch runs every sequence alone (a padded batch's h_n would not be at each
sequence's own last step), with the loss of docs/math.md: cross-entropy as
``F.cross_entropy(z, y, reduction="sum")`` per sequence, squared error as
``0.5 * ((z - y) ** 2).sum()``, each sequence's loss weighted by its share
w_b / Σ w (1/B without weights), per-step weights multiplying each step's
loss.
"""
import numpy as np

from fastrnn.convert import from_torch_state_dict, to_torch_state_dict


def as_sequences(X):
    """The sequences of any input form, as a list of arrays."""
    if isinstance(X, list):
        return [np.asarray(x) for x in X]
    X = np.asarray(X)
    single = X.ndim == (1 if X.dtype.kind in "iu" else 2)
    return [X] if single else list(X)


def torch_loss_and_grad(torch, params, X, y, *, loss="cross_entropy", output="every_step",
                        h0=None, seq_weight=None, step_weight=None):
    """(loss, grads, probs, hidden, dstate0, dX, state_last) by PyTorch: grads
    with fastrnn's keys; probs, hidden and dX per sequence (lists); dstate0
    and state_last as (L·D, n_states, B, d). ``seq_weight`` (B,) or None,
    ``step_weight`` a list of (T_b,) or None."""
    import torch.nn.functional as F
    rnn_state, linear_state = to_torch_state_dict(params)
    W_h = params["W_h"]
    d = W_h.shape[1]
    cell = {1: "rnn", 4: "lstm", 3: "gru"}[W_h.shape[0] // d]
    layers = 1 + max([int(key.split("_l")[1].split("_")[0]) for key in rnn_state])
    bidirectional = any(key.endswith("_reverse") for key in rnn_state)
    D = 2 if bidirectional else 1
    k, m = params["W_x"].shape[1], params["W_y"].shape[0]
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    rnn = module(k, d, num_layers=layers, bidirectional=bidirectional, batch_first=True,
                 dtype=torch.float64)
    linear = torch.nn.Linear(D * d, m, dtype=torch.float64)
    rnn.load_state_dict({key: torch.from_numpy(v) for key, v in rnn_state.items()})
    linear.load_state_dict({key: torch.from_numpy(v) for key, v in linear_state.items()})
    seqs = as_sequences(X)
    B = len(seqs)
    deep = layers > 1 or bidirectional
    n_states = 2 if cell == "lstm" else 1
    state0 = np.zeros((layers * D, n_states, B, d))
    if h0 is not None:
        parts = h0 if cell == "lstm" else (h0,)
        for j, part in enumerate(parts):
            if part is not None:
                part = np.asarray(part, dtype=float)
                state0[:, j] = part.reshape(layers * D, B, d) if deep else part.reshape(1, B, d)
    state0_t = torch.tensor(state0, requires_grad=True)
    single = not isinstance(X, list) and len(seqs) == 1 and np.ndim(X) == (
        1 if np.asarray(X).dtype.kind in "iu" else 2)
    if output == "last_step":
        targets = [np.asarray(y)] if single else list(np.asarray(y))
    elif isinstance(y, list):
        targets = [np.asarray(t) for t in y]
    else:
        targets = [np.asarray(y)] if single else list(np.asarray(y))
    scale = np.full(B, 1.0 / B) if seq_weight is None else seq_weight / np.sum(seq_weight)
    xs, total, probs, hidden, h_last = [], 0.0, [], [], np.zeros_like(state0)
    for b, x in enumerate(seqs):
        x = np.eye(k)[x] if x.dtype.kind in "iu" else x
        xt = torch.tensor(x, requires_grad=True)
        xs.append(xt)
        s0 = state0_t[:, :, b:b + 1]                          # (L·D, n_states, 1, d)
        if cell == "lstm":
            out, (hn, cn) = rnn(xt[None], (s0[:, 0].contiguous(), s0[:, 1].contiguous()))
            h_last[:, 0, b], h_last[:, 1, b] = hn[:, 0].detach().numpy(), cn[:, 0].detach().numpy()
        else:
            out, hn = rnn(xt[None], s0[:, 0].contiguous())
            h_last[:, 0, b] = hn[:, 0].detach().numpy()
        if output == "last_step":
            features = torch.cat([hn[-D + j, 0] for j in range(D)])[None]
        else:
            features = out[0]
        z = linear(features)
        target = targets[b]
        if loss == "cross_entropy":
            if target.dtype.kind in "iu":
                tt = torch.tensor(np.atleast_1d(target))
                per = F.cross_entropy(z, tt, reduction="none")
            else:
                tt = torch.tensor(np.atleast_2d(target))
                per = -(tt * torch.log_softmax(z, dim=-1)).sum(dim=-1)
            probs.append(torch.softmax(z, dim=-1).detach().numpy())
        else:
            tt = torch.tensor(np.asarray(target, dtype=float).reshape(z.shape))
            per = 0.5 * ((z - tt) ** 2).sum(dim=-1)
            probs.append(z.detach().numpy())
        if step_weight is not None:
            per = per * torch.tensor(step_weight[b])
        total = total + scale[b] * per.sum()
        hidden.append(out[0].detach().numpy())
    total.backward()
    grads = from_torch_state_dict({n: p.grad for n, p in rnn.named_parameters()},
                                  {n: p.grad for n, p in linear.named_parameters()},
                                  gradients=True)
    dX = [xt.grad.numpy() for xt in xs]
    return (float(total.item()), grads, probs, hidden, state0_t.grad.numpy(), dX, h_last)


def hand_forward(params, x):
    """ŷ_t of one sequence of the notes' simple RNN, step by step: dense
    (T, k) inputs or (T,) ids (then x_t is one-hot)."""
    W_x, W_h, b_h, W_y, b_y = (params[key] for key in ("W_x", "W_h", "b_h", "W_y", "b_y"))
    h = np.zeros(W_h.shape[0])
    out = []
    for x_t in x:
        wx = W_x[:, x_t] if np.ndim(x_t) == 0 else W_x @ x_t
        h = np.tanh(W_h @ h + wx + b_h)
        z = W_y @ h + b_y
        e = np.exp(z - z.max())
        out.append(e / e.sum())
    return np.array(out)
