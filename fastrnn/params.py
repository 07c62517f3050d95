"""Creating parameter dicts."""
import numpy as np

from fastrnn._validation import GATES, check_cell, check_positive_int, check_random_state


def init_params(n_inputs, n_hidden, n_outputs=None, cell="rnn", random_state=None):
    """New parameters for a network with k = n_inputs, d = n_hidden and
    m = n_outputs (default: n_inputs, next-symbol prediction as in the notes).

    Returns a dict of C-contiguous float64 arrays with the keys and shapes of
    SPEC.md: ``W_x`` (G·d, k), ``W_h`` (G·d, d), ``b_h`` (G·d,), ``W_y`` (m, d),
    ``b_y`` (m,), where G = 1 for ``cell="rnn"`` and G = 4 for ``cell="lstm"``
    (gate blocks stacked in the order f, i, o, g).

    Init scheme (PyTorch's for nn.RNN / nn.LSTM / nn.Linear, without its
    random biases): every weight is drawn uniformly from [-1/√d, 1/√d]; the
    biases are 0, except the LSTM forget-gate bias, which is 1 so that the
    cell starts out remembering (Jozefowicz et al., 2015). The draws are made
    in the order W_x, W_h, W_y from ``np.random.default_rng(random_state)``,
    so the same ``random_state`` gives the same parameters on every machine.
    """
    k = check_positive_int(n_inputs, "n_inputs")
    d = check_positive_int(n_hidden, "n_hidden")
    m = k if n_outputs is None else check_positive_int(n_outputs, "n_outputs")
    cell = check_cell(cell)
    rng = check_random_state(random_state)
    rows = GATES[cell] * d
    bound = 1.0 / np.sqrt(d)
    params = {
        "W_x": rng.uniform(-bound, bound, size=(rows, k)),
        "W_h": rng.uniform(-bound, bound, size=(rows, d)),
        "b_h": np.zeros(rows),
        "W_y": rng.uniform(-bound, bound, size=(m, d)),
        "b_y": np.zeros(m),
    }
    if cell == "lstm":
        params["b_h"][:d] = 1.0          # forget gate: block 0 (f, i, o, g)
    return {key: params[key] for key in ("W_x", "W_h", "b_h", "W_y", "b_y")}
