"""``fastrnn why``: the lecture notes' "Why?" (why the LSTM), made visible.

A simple RNN and an LSTM of the same size read the same T inputs and are
scored only at the last step, L_T. How much does L_T depend on the state
of k steps earlier? ``‖∂L_T/∂h_{T−k}‖``, computed exactly: it is the
gradient of L_T with respect to the initial state of the last k steps run
alone from h_{T−k} (``loss_and_grad(..., return_dh0=True)``). Nothing is
trained: the networks are at their initial weights.
"""
import numpy as np

from fastrnn.cli._util import MATPLOTLIB_MISSING, CLIError, check_writable, matplotlib_available
from fastrnn.functional import forward, loss_and_grad
from fastrnn.params import init_params

DISTANCES = (0, 1, 2, 5, 10, 20, 30, 40, 50)
MIN_STEPS = max(DISTANCES) + 1
CELL_TITLES = {"rnn": "simple RNN", "lstm": "LSTM", "gru": "GRU"}

EXPLANATION = """\
Why? The simple RNN's state passes through h_t = tanh(W_H h_{t-1} + ...) at
every step, so the gradient that reaches k steps back is multiplied k times
by diag(1 - h_t^2) W_H. With weights of the usual scale those factors
shrink vectors, and their product shrinks geometrically: what happened 50
steps ago has almost no effect on the gradient, so a simple RNN cannot learn
to use it. The LSTM's cell state is carried additively, c_t = f_t * c_{t-1}
+ i_t * g_t, and its gradient flows back as dc_{t-1} = dc_t * f_t: where the
forget gate stays near 1 the signal survives many steps. The table shows the
two decays side by side, measured on the same inputs at initialisation."""


def gradient_norms(cell, steps=60, n_inputs=8, n_hidden=32, seed=0, distances=DISTANCES):
    """{distance k: ‖∂L_T/∂h_{T−k}‖} for a network of ``cell`` at its
    initial weights, on ``steps`` random one-hot inputs and a random class
    at the last step (the same for every cell with the same seed)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, n_inputs, steps)
    target = int(rng.integers(0, n_inputs))
    params = init_params(n_inputs, n_hidden, cell=cell, random_state=seed)
    hidden = forward(params, X, return_hidden=True)[2]
    norms = {}
    for k in distances:
        if k >= steps:
            continue
        h, c = (hidden[0], hidden[1]) if cell == "lstm" else (hidden, None)
        if k == 0:
            norms[k] = _last_step_norm(params, h[-1], target)
            continue
        start = steps - k                       # h_{T-k}: the state after step T - k (row start-1)
        state = (h[start - 1], c[start - 1]) if cell == "lstm" else h[start - 1]
        dh = loss_and_grad(params, X[start:], target, h0=state, output="last_step",
                           return_dh0=True)[2]
        norms[k] = float(np.linalg.norm(dh[0] if cell == "lstm" else dh))
    return norms


def _last_step_norm(params, h_T, target):
    """‖∂L_T/∂h_T‖ = ‖W_Yᵀ (ŷ_T − y_T)‖, the output layer's share."""
    z = params["W_y"] @ h_T + params["b_y"]
    p = np.exp(z - z.max())
    p /= p.sum()
    p[target] -= 1.0
    return float(np.linalg.norm(params["W_y"].T @ p))


def run(args, out):
    if args.plot is not None:
        check_writable(args.plot, "--plot")
        if not matplotlib_available():
            raise CLIError(MATPLOTLIB_MISSING)
    cells = ("rnn", "lstm")
    norms = {cell: gradient_norms(cell, args.steps, n_hidden=args.hidden, seed=args.seed)
             for cell in cells}
    out(f"How far back does the gradient reach? A simple RNN and an LSTM with {args.hidden} "
        f"hidden units, at their initial weights (seed {args.seed}), read the same {args.steps} "
        f"random inputs; the loss L_T is at the last step only.")
    out("")
    out(f"  {'k (steps back)':>14}   " + "   ".join(
        f"{CELL_TITLES[c] + ': ‖∂L_T/∂h_(T−k)‖ / ‖∂L_T/∂h_T‖':>34}" for c in cells))
    for k in DISTANCES:
        cells_text = "   ".join(f"{norms[c][k] / norms[c][0]:>34.2e}" for c in cells)
        out(f"  {k:>14}   {cells_text}")
    far = max(DISTANCES)
    ratio = {c: norms[c][far] / norms[c][0] for c in cells}
    out("")
    out(f"Over {far} steps the simple RNN's gradient falls to {ratio['rnn']:.1e} of its size at "
        f"the last step, the LSTM's to {ratio['lstm']:.1e}: "
        f"{np.log10(ratio['lstm'] / ratio['rnn']):.1f} orders of magnitude apart.")
    out("")
    out(EXPLANATION)
    if args.plot is not None:
        from fastrnn.cli.plot import plot_gradient_norms
        plot_gradient_norms(args.plot, {CELL_TITLES[c]: norms[c] for c in cells}, args.hidden,
                            args.steps)
        out("")
        out(f"Saved the plot to {args.plot}")
    return 0
