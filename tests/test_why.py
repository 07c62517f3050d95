"""`fastrnn why`: the notes' "Why?" (vanishing gradients, simple RNN vs
LSTM), and the numbers it prints.

fastrnn.cli.why.gradient_norms gives ‖∂L_T/∂h_{T−k}‖ for a network at its
initial weights, where L_T is the cross-entropy at the last step and h_{T−k}
the hidden state after step T − k (for the LSTM, with c_{T−k} held fixed).
Here it is checked against three computations that share nothing with
fastrnn's kernels: central differences of a hand-written forward pass, a
hand-written backward recursion, and PyTorch's autograd on nn.RNN/nn.LSTM.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastrnn
from _optional import require
from fastrnn.cli.why import DISTANCES, gradient_norms

TIMEOUT = 600


def fastrnn_command(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)


def problem(cell, steps, n_inputs, n_hidden, seed):
    """The inputs, target and weights gradient_norms documents: `steps`
    random token ids and one random class from default_rng(seed), and
    init_params(n_inputs, n_hidden, cell, random_state=seed)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, n_inputs, steps)
    target = int(rng.integers(0, n_inputs))
    params = fastrnn.init_params(n_inputs, n_hidden, cell=cell, random_state=seed)
    return X, target, params


# ------------------------------------------------ the cells, by hand
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def step(cell, params, x, h, c):
    """One step of the notes' equations from (h_{t-1}, c_{t-1}) on token id x
    (the one-hot x_t: W_X x_t is column x of W_X). Returns (h_t, c_t, gates)."""
    a = params["W_x"][:, x] + params["W_h"] @ h + params["b_h"]
    if cell == "rnn":
        return np.tanh(a), None, None
    d = len(h)
    f, i, o = _sigmoid(a[:d]), _sigmoid(a[d:2 * d]), _sigmoid(a[2 * d:3 * d])
    g = np.tanh(a[3 * d:])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new, (f, i, o, g)


def run(cell, params, X, h, c):
    """Every (h_t, c_t, gates) from (h, c), in order."""
    states = []
    for x in X:
        h, c, gates = step(cell, params, x, h, c)
        states.append((h, c, gates))
    return states


def last_step_loss(params, h_T, target):
    z = params["W_y"] @ h_T + params["b_y"]
    z = z - z.max()
    return float(np.log(np.exp(z).sum()) - z[target])


def hand_norms(cell, steps, n_inputs, n_hidden, seed, distances):
    """‖∂L_T/∂h_{T−k}‖ by a hand-written backward recursion:
    rnn:  dh_{t−1} = W_Hᵀ (dh_t ⊙ (1 − h_t²));
    lstm: dc = dc_t + dh_t ⊙ o ⊙ (1 − tanh²c_t), da = [dc⊙c_{t−1}⊙f(1−f),
          dc⊙g⊙i(1−i), dh_t⊙tanh(c_t)⊙o(1−o), dc⊙i⊙(1−g²)],
          dh_{t−1} = W_Hᵀ da, dc_{t−1} = dc ⊙ f."""
    X, target, params = problem(cell, steps, n_inputs, n_hidden, seed)
    zero = np.zeros(n_hidden)
    states = run(cell, params, X, zero, zero if cell == "lstm" else None)
    h_T = states[-1][0]
    z = params["W_y"] @ h_T + params["b_y"]
    p = np.exp(z - z.max())
    p /= p.sum()
    p[target] -= 1.0
    dh, dc = params["W_y"].T @ p, np.zeros(n_hidden)
    norms = {0: float(np.linalg.norm(dh))}
    for back in range(1, max(distances) + 1):
        t = steps - back                        # 0-based index of step T - back + 1
        h_t, c_t, gates = states[t]
        if cell == "rnn":
            da = dh * (1.0 - h_t ** 2)
        else:
            f, i, o, g = gates
            c_prev = states[t - 1][1] if t > 0 else zero
            tc = np.tanh(c_t)
            dc = dc + dh * o * (1.0 - tc ** 2)
            da = np.concatenate([dc * c_prev * f * (1 - f), dc * g * i * (1 - i),
                                 dh * tc * o * (1 - o), dc * i * (1 - g ** 2)])
            dc = dc * f
        dh = params["W_h"].T @ da
        norms[back] = float(np.linalg.norm(dh))
    return {k: norms[k] for k in distances}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_norms_match_finite_differences(cell):
    """A small case, where central differences are accurate: perturb each
    entry of h_{T−k} (c_{T−k} fixed), run the last k steps by hand, and
    take the norm of the numerical gradient of L_T."""
    steps, n_inputs, n_hidden, seed = 12, 5, 4, 3
    distances = (0, 1, 2, 5, 11)
    norms = gradient_norms(cell, steps, n_inputs=n_inputs, n_hidden=n_hidden, seed=seed,
                           distances=distances)
    assert sorted(norms) == list(distances)
    X, target, params = problem(cell, steps, n_inputs, n_hidden, seed)
    zero = np.zeros(n_hidden)
    states = run(cell, params, X, zero, zero if cell == "lstm" else None)
    eps = 1e-6
    for k in distances:
        h_start, c_start = states[steps - k - 1][:2]

        def loss(h):
            if k == 0:
                return last_step_loss(params, h, target)
            return last_step_loss(params, run(cell, params, X[steps - k:], h, c_start)[-1][0],
                                  target)

        numeric = np.empty(n_hidden)
        for j in range(n_hidden):
            e = np.zeros(n_hidden)
            e[j] = eps
            numeric[j] = (loss(h_start + e) - loss(h_start - e)) / (2 * eps)
        expected = np.linalg.norm(numeric)
        assert expected > 1e-4                    # well above the differences' noise
        assert norms[k] == pytest.approx(expected, rel=1e-6), (k, norms[k], expected)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_norms_match_a_hand_written_backward_pass(cell):
    """The table's own size (32 units, 60 steps, every distance up to 50),
    where the norms span ten orders of magnitude: the hand-written
    recursion gives them to round-off."""
    norms = gradient_norms(cell, 60, n_hidden=32, seed=0)
    expected = hand_norms(cell, 60, 8, 32, 0, DISTANCES)
    assert sorted(norms) == sorted(DISTANCES)
    for k in DISTANCES:
        assert norms[k] == pytest.approx(expected[k], rel=1e-9), (k, norms[k], expected[k])


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_gradient_norms_match_pytorch_autograd(cell):
    """PyTorch's nn.RNN/nn.LSTM (float64), loaded with the same weights via
    fastrnn.convert: run the first T − k steps, then the last k from a leaf
    h_{T−k} (c_{T−k} detached), L_T by cross_entropy, and ‖h.grad‖."""
    torch = require("torch", "the PyTorch cross-check of fastrnn why")
    from fastrnn.convert import to_torch_state_dict
    steps, n_inputs, n_hidden, seed = 60, 8, 32, 0
    X, target, params = problem(cell, steps, n_inputs, n_hidden, seed)
    rnn_state, linear_state = to_torch_state_dict(params)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}[cell](n_inputs, n_hidden).double()
    module.load_state_dict({key: torch.from_numpy(v) for key, v in rnn_state.items()})
    linear = torch.nn.Linear(n_hidden, n_inputs).double()
    linear.load_state_dict({key: torch.from_numpy(v) for key, v in linear_state.items()})
    inputs = torch.from_numpy(np.eye(n_inputs)[X][:, None, :])       # (T, 1, k)
    norms = gradient_norms(cell, steps, n_inputs=n_inputs, n_hidden=n_hidden, seed=seed)
    for k in DISTANCES:
        with torch.no_grad():
            _, state = module(inputs[:steps - k])
        h = (state[0] if cell == "lstm" else state).clone().requires_grad_(True)
        start = (h, state[1]) if cell == "lstm" else h
        if k:
            out, _ = module(inputs[steps - k:], start)
            h_T = out[-1, 0]
        else:
            h_T = h[0, 0]
        loss = torch.nn.functional.cross_entropy(linear(h_T)[None], torch.tensor([target]))
        loss.backward()
        expected = float(h.grad.norm())
        assert norms[k] == pytest.approx(expected, rel=1e-9), (k, norms[k], expected)


# --------------------------------------------------------- the command
def _table(stdout):
    rows = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0].isdigit():
            rows[int(fields[0])] = (float(fields[1]), float(fields[2]))
    return rows


def test_fastrnn_why_prints_the_table_and_the_explanation(tmp_path):
    result = fastrnn_command("why", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    header = next(line for line in out.splitlines() if "k (steps back)" in line)
    assert "simple RNN" in header and "LSTM" in header
    rows = _table(out)
    assert sorted(rows) == sorted(DISTANCES)
    # The ratios ‖∂L_T/∂h_(T−k)‖ / ‖∂L_T/∂h_T‖ of the default (32 units,
    # 60 steps, seed 0), computed here by hand, to the 3 digits printed.
    expected = {cell: hand_norms(cell, 60, 8, 32, 0, DISTANCES) for cell in ("rnn", "lstm")}
    for k, (rnn, lstm) in rows.items():
        assert rnn == pytest.approx(expected["rnn"][k] / expected["rnn"][0], rel=6e-3), k
        assert lstm == pytest.approx(expected["lstm"][k] / expected["lstm"][0], rel=6e-3), k
    # The measurement: over 50 steps the simple RNN's gradient falls
    # to about 1e-11, the LSTM's to 1e-4..1e-5, at least 3 orders apart.
    rnn50, lstm50 = rows[50]
    assert rows[0] == (1.0, 1.0)
    assert rnn50 < 1e-9
    assert 1e-6 < lstm50 < 1e-3
    assert np.log10(lstm50 / rnn50) >= 3
    summary = re.search(r"Over 50 steps the simple RNN's gradient falls to (\S+) of its size "
                        r"at the last step, the LSTM's to (\S+): (\S+) orders of magnitude "
                        r"apart", out)
    assert summary, out
    assert float(summary.group(1)) == pytest.approx(rnn50, rel=0.05)
    assert float(summary.group(2)) == pytest.approx(lstm50, rel=0.05)
    assert float(summary.group(3)) == pytest.approx(np.log10(lstm50 / rnn50), abs=0.06)
    # The paragraph on why, after the table.
    explanation = out[out.index("Why?"):]
    assert out.index("Why?") > out.index("Over 50 steps")
    for claim in ("diag(1 - h_t^2) W_H", "c_t = f_t * c_{t-1}", "forget gate",
                  "dc_{t-1} = dc_t * f_t"):
        assert claim in " ".join(explanation.split()), claim


def test_fastrnn_why_other_sizes_and_seeds(tmp_path):
    result = fastrnn_command("why", "--hidden", "16", "--steps", "70", "--seed", "4",
                             cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert "16 hidden units" in result.stdout and "(seed 4)" in result.stdout
    assert "70 random inputs" in result.stdout
    expected = {cell: hand_norms(cell, 70, 8, 16, 4, DISTANCES) for cell in ("rnn", "lstm")}
    assert sorted(rows) == sorted(DISTANCES)
    for k, (rnn, lstm) in rows.items():
        assert rnn == pytest.approx(expected["rnn"][k] / expected["rnn"][0], rel=6e-3), k
        assert lstm == pytest.approx(expected["lstm"][k] / expected["lstm"][0], rel=6e-3), k


def _colour_pixels(image, rgb):
    return int((np.abs(image[..., :3] - np.array(rgb) / 255).max(axis=-1) < 0.08).sum())


def test_fastrnn_why_plot_writes_a_png_with_both_curves(tmp_path):
    require("matplotlib", "fastrnn why --plot")
    from matplotlib.image import imread
    result = fastrnn_command("why", "--plot", "why.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Saved the plot to why.png" in result.stdout
    data = (tmp_path / "why.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = imread(tmp_path / "why.png")
    assert image.shape[0] >= 300 and image.shape[1] >= 500
    assert _colour_pixels(image, (0x1f, 0x77, 0xb4)) > 200       # one curve (tab:blue)
    assert _colour_pixels(image, (0xff, 0x7f, 0x0e)) > 200       # the other (tab:orange)


def test_fastrnn_why_plot_without_matplotlib_is_one_line(tmp_path):
    shim = tmp_path / "hide" / "matplotlib"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "hide")] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    result = fastrnn_command("why", "--plot", "why.png", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastrnn: error: "), result.stderr
    assert "pip install matplotlib" in lines[0]
    assert result.stdout == ""                               # refused before any work
    assert not (tmp_path / "why.png").exists()
