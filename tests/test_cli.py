"""The `fastrnn` command, driven as a user drives it: `python -m fastrnn ...`
in a subprocess, in a fresh directory, reading what it prints. Where only
the message and the exit code matter (the many user errors), the same
`fastrnn.cli.main(argv)` runs in this process, which is as strict (a
traceback or a warning fails the test) and a hundred times faster."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from _optional import require
from fastrnn import CharVocab, FastRNN, FastRNNRegressor, init_params
from fastrnn.cli._util import CLIError

# Generous: the first run on a fresh machine compiles the training kernels.
TIMEOUT = 600
SMALL = ["--hidden", "8", "--bptt", "10"]
README = Path(__file__).resolve().parents[1] / "README.md"


def fastrnn(*args, cwd, env=None, timeout=TIMEOUT):
    return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def in_process(argv, capsys):
    """`fastrnn ARGV` as fastrnn.cli.main(argv): (exit code, stdout, stderr)."""
    from fastrnn.cli import main
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                  # argparse: usage errors, --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(result):
    """Exit 0, nothing on stderr but possibly notes: no traceback, no warning."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr


def assert_one_line(stderr, code, expected_code, *fragments):
    assert code == expected_code, (code, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fastrnn: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_one_line_error(result, *fragments, code):
    assert_one_line(result.stderr, result.returncode, code, *fragments)


def env_hiding(tmp_path, *modules):
    """An environment in which importing these modules fails, as if they
    were not installed (a package of that name that raises ImportError)."""
    shim = tmp_path / "hide"
    for module in modules:
        (shim / module).mkdir(parents=True)
        (shim / module / "__init__.py").write_text(
            f"raise ImportError(\"No module named '{module}' (hidden by the test)\")\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim)] + ([env["PYTHONPATH"]]
                                                         if env.get("PYTHONPATH") else []))
    return env


def big_text(min_chars=420_000, seed=0):
    """A deterministic English-like text of at least min_chars characters
    (more than the 400 KB of the Ctrl-C issue): varied sentences from a
    seeded generator."""
    rng = np.random.default_rng(seed)
    subjects = ["the old sailor", "a quiet student", "the network", "my neighbour",
                "every gardener", "the little fox", "our teacher", "a tired engineer",
                "the river", "the committee"]
    verbs = ["remembers", "carries", "watches", "forgets", "builds", "explains", "follows",
             "paints", "measures", "answers"]
    objects = ["the long letter", "a red umbrella", "seven small stones", "the evening train",
               "an unfinished song", "the map of the harbour", "two green apples",
               "the broken clock", "a question nobody asked", "the last page"]
    tails = ["before the rain.", "without a word.", "in the morning.", "as the bell rings.",
             "near the bridge.", "for the third time.", "with great care.", "after supper."]
    parts, size = [], 0
    while size < min_chars:
        sentence = " ".join([subjects[rng.integers(10)], verbs[rng.integers(10)],
                             objects[rng.integers(10)], tails[rng.integers(8)]])
        sentence = sentence[0].upper() + sentence[1:] + ("\n" if rng.random() < 0.2 else " ")
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.txt"
    path.write_text(big_text(), encoding="utf-8")
    assert path.stat().st_size >= 400_000
    return path


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    """A small character model saved as `fastrnn train` would save it."""
    text = "hello world, hello fastrnn\n" * 4
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    model = FastRNN(n_hidden=8, epochs=5, bptt=10, optimizer="adagrad", learning_rate=0.1,
                    random_state=0).fit(ids[:-1], ids[1:], vocab=vocab)
    path = tmp_path_factory.mktemp("model") / "hello.npz"
    model.save(path)
    return path


# ------------------------------------------------------ the notes' toy by hand
TOY_X = np.eye(4)[[0, 1, 2]]
TOY_TARGETS = [1, 2, 3]


def toy_by_hand(W_x, W_h, b_h, W_y, b_y):
    """a_t = W_H h_{t-1} + W_X x_t + b_h, h_t = tanh(a_t),
    ŷ_t = softmax(W_Y h_t + b_y), L = -Σ log ŷ_t[y_t] for x = one-hot 0, 1, 2
    and y = 1, 2, 3. Returns (L, [a_t], [h_t], [ŷ_t])."""
    h = np.zeros(W_h.shape[0])
    loss, As, Hs, Ps = 0.0, [], [], []
    for x, y in zip(TOY_X, TOY_TARGETS):
        a = W_h @ h + W_x @ x + b_h
        h = np.tanh(a)
        z = W_y @ h + b_y
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        loss -= np.log(p[y])
        As.append(a)
        Hs.append(h)
        Ps.append(p)
    return float(loss), As, Hs, Ps


def printed_array(out, name, until):
    """The numbers printed as `name = [[...]]` before the line with `until`."""
    start = out.index(f"{name} = ")
    end = out.index(until, start)
    return np.array([float(v) for v in re.findall(r"-?\d+\.\d+", out[start + len(name):end])])


def printed_loss(out):
    return float(re.search(r"Loss  L = .* = (\d+\.\d+)", out).group(1))


# ------------------------------------------------------------------ demo
@pytest.mark.parametrize("args", [["demo"], []], ids=["demo", "bare"])
def test_demo(tmp_path, args):
    result = fastrnn(*args, cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert out.startswith("The assignment of the lecture notes: a simple RNN, k=4, d=3, T=3")
    # the notes' names
    for name in ("W_X = ", "W_H = ", "b_h = ", "W_Y = ", "b_y = ", "a_t  = ", "h_t  = ",
                 "y^_t = ", "dL/dW_X", "dL/dW_H", "dL/db_h", "dL/dW_Y", "dL/db_y", "dL/dh_0"):
        assert name in out, name
    # seed 0: init_params(4, 3, random_state=0); its loss on the toy, by hand
    p = init_params(4, 3, random_state=0)
    loss = toy_by_hand(p["W_x"], p["W_h"], p["b_h"], p["W_y"], p["b_y"])[0]
    assert printed_loss(out) == pytest.approx(loss, abs=1e-11)
    np.testing.assert_allclose(printed_array(out, "W_X", "W_H"), p["W_x"].ravel(), atol=5e-7)
    assert "largest: " in out and "(agree)" in out
    assert "Final predictions: [1 2 3]" in out
    assert "It predicts the shifted sequence from epoch" in out
    assert "(bound 1e-12: agree)" in out
    assert "numba is" in out and "the speed of numpy" in out


STUDENT = {  # a student's weights, with the notes' names, 3 decimals (printed exactly)
    "W_X": np.array([[-0.642, -1.059, -0.199, 0.336], [0.909, 0.088, -0.442, -0.628],
                     [0.599, 1.308, 0.218, -0.987]]),
    "W_H": np.array([[-0.767, 1.28, 0.162], [-1.386, -0.067, -0.931], [-0.503, -0.39, -0.571]]),
    "b_h": np.array([0.277, -0.032, -0.295]),
    "W_Y": np.array([[0.328, 0.664, -1.314], [-0.205, -0.785, -0.139], [-1.032, 0.017, -0.03],
                     [-0.243, -0.838, -0.317]]),
    "b_y": np.array([-0.546, -0.678, 0.112, -0.555]),
}


def test_demo_with_the_students_weights(tmp_path):
    np.savez(tmp_path / "student.npz", **STUDENT)
    result = fastrnn("demo", "--params", "student.npz", cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert "Initial weights: from your file:" in out
    np.testing.assert_allclose(printed_array(out, "W_X", "W_H"), STUDENT["W_X"].ravel(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(printed_array(out, "W_H", "b_h"), STUDENT["W_H"].ravel(),
                               rtol=0, atol=1e-12)
    loss, As, Hs, Ps = toy_by_hand(*(STUDENT[k] for k in ("W_X", "W_H", "b_h", "W_Y", "b_y")))
    assert printed_loss(out) == pytest.approx(loss, abs=1e-11)
    # every a_t, h_t, y^_t of the forward pass, to the 6 decimals printed
    steps = out[out.index("Forward pass"):out.index("Loss  L")]
    for t in range(3):
        block = steps[steps.index(f"t={t + 1}:"):]
        np.testing.assert_allclose(printed_array(block, "a_t ", "h_t "), As[t], atol=6e-7)
        np.testing.assert_allclose(printed_array(block, "h_t ", "y^_t"), Hs[t], atol=6e-7)
        np.testing.assert_allclose(printed_array(block, "y^_t", "\n"), Ps[t], atol=6e-7)
    # training starts from these weights: epoch 0's loss is theirs
    row0 = next(line.split() for line in out.splitlines() if line.split()[:1] == ["0"])
    assert float(row0[1]) == pytest.approx(loss, abs=5e-5)


def test_demo_params_any_d_and_fastrnns_key_names(tmp_path):
    """d is read from the file (here 2), and fastrnn's key names work too."""
    from fastrnn.cli.demo import read_params, run_gradients
    rng = np.random.default_rng(7)
    weights = {"W_x": rng.normal(size=(2, 4)), "W_h": rng.normal(size=(2, 2)),
               "b_h": rng.normal(size=2), "W_y": rng.normal(size=(4, 2)),
               "b_y": rng.normal(size=4)}
    np.savez(tmp_path / "mine.npz", **weights)
    lines = []
    worst = run_gradients(params=read_params(str(tmp_path / "mine.npz")), repeat=2,
                          out=lambda text="": lines.append(text))
    out = "\n".join(lines)
    assert "k=4, d=2, T=3" in out
    assert worst <= 1e-12
    loss = toy_by_hand(*(weights[k] for k in ("W_x", "W_h", "b_h", "W_y", "b_y")))[0]
    assert printed_loss(out) == pytest.approx(loss, abs=1e-11)


def test_demo_compile_note_is_honest(monkeypatch):
    """The note shown while the kernels compile gives the measured 10 to 40 s
    of the README, not "a few seconds" (shown here at once, compiling or not)."""
    from fastrnn.cli import _util, demo

    class AtOnce(_util.SlowNote):
        def __enter__(self):
            self._fire()
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(demo, "SlowNote", AtOnce)
    lines = []
    demo.run_gradients(repeat=1, out=lambda text="": lines.append(text))
    notes = [line for line in lines if line.startswith("(compiling the kernels")]
    assert len(notes) == 1, lines
    assert "10 to 40 s" in notes[0] and "2-core" in notes[0]
    assert "a few seconds" not in notes[0]
    assert "10 to 40 seconds on a 2-core machine" in " ".join(README.read_text().split())


BAD_PARAMS = {
    # file name: (how to write it, fragments of the message)
    "missing.npz": (None, ["--params missing.npz: no such file"]),
    "notes.txt": (lambda p: p.write_text("W_X = 1\n"), ["--params", "not a NumPy .npz file"]),
    "truncated.npz": (lambda p: p.write_bytes(_npz_bytes(STUDENT)[:300]),
                      ["--params", "not a NumPy .npz file"]),
    "no_W_H.npz": (lambda p: np.savez(p, **{k: v for k, v in STUDENT.items() if k != "W_H"}),
                   ["no array W_H"]),
    "shape.npz": (lambda p: np.savez(p, **dict(STUDENT, W_X=np.zeros((3, 5)))),
                  ["W_X has shape (3, 5)", "W_X (d, 4)"]),
    "nan.npz": (lambda p: np.savez(p, **dict(STUDENT, b_h=np.array([0.0, np.nan, 0.0]))),
                ["b_h holds non-finite values"]),
    "pickled.npz": (lambda p: np.savez(p, **dict(STUDENT, W_X=np.array([{}], dtype=object))),
                    ["--params", "pickled.npz"]),
    "damaged.npz": (lambda p: _npz_damaged(p, compressed=False), ["--params", "damaged.npz"]),
    "damaged_compressed.npz": (lambda p: _npz_damaged(p, compressed=True),
                               ["--params", "damaged_compressed.npz"]),
    "strings.npz": (lambda p: np.savez(p, **dict(STUDENT, W_X=np.array(["a"]))),
                    ["--params", "W_X holds <U1 values; expected numbers"]),
    "bomb.npz": (lambda p: np.savez_compressed(p, **dict(STUDENT, junk=np.zeros(2**23 + 1))),
                 ["--params", "would take", "bytes"]),
    "huge_shape.npz": (lambda p: _npz_huge_shape(p), ["--params", "huge_shape.npz"]),
}


def _npz_huge_shape(path):
    """An .npz whose W_H member declares a shape of 10**12 values (8 TB) and
    holds nine."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(STUDENT["W_H"], dtype=np.float64))
    member = buffer.getvalue()
    header, bigger = b"'shape': (3, 3)", b"'shape': (1000000000000, 3)"
    start = member.index(header)
    end = member.index(b"\n", start)
    spaces = len(bigger) - len(header)
    assert member[end - spaces:end] == b" " * spaces     # the header keeps its length
    member = member[:start] + bigger + member[start + len(header):end - spaces] + member[end:]
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in STUDENT.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array))
            archive.writestr(f"{name}.npy", member if name == "W_H" else buffer.getvalue())


def _npz_damaged(path, compressed):
    """An .npz whose W_H member's bytes are changed (a bad CRC, or a broken
    deflate stream)."""
    (np.savez_compressed if compressed else np.savez)(path, **STUDENT)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("W_H.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 8
    path.write_bytes(_flip(path.read_bytes(), offset, 24))


def _npz_bytes(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(BAD_PARAMS))
def test_demo_bad_params_file_is_one_line(tmp_path, monkeypatch, capsys, name):
    write, fragments = BAD_PARAMS[name]
    if write is not None:
        write(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process(["demo", "--params", name], capsys)
    assert_one_line(err, code, 1, *fragments)
    assert out == ""


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", ["", "demo", "train", "sample", "bench", "why", "cache"])
def test_help(capsys, command):
    code, out, err = in_process(([command] if command else []) + ["--help"], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"usage: fastrnn {command}".rstrip())
    if not command:
        for name in ("demo", "train", "sample", "bench", "why", "cache"):
            assert f"  {name} " in out, name


def test_version_and_help_as_a_command(tmp_path):
    import fastrnn as package
    result = fastrnn("--version", cwd=tmp_path)
    assert_clean(result)
    assert result.stdout == f"fastrnn {package.__version__}\n"
    result = fastrnn("train", "--help", cwd=tmp_path)
    assert_clean(result)
    assert "--streams" in result.stdout and "--dropout" in result.stdout


# ------------------------------------------------------------ train/sample
def test_train_default_text_then_sample(tmp_path):
    result = fastrnn("train", "--hidden", "8", "--epochs", "3", "--out", "zen.npz", cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert "Text: the default text (the Zen of Python" in out
    assert "epoch 3/3" in out and "loss/char" in out and "chars/s" in out
    assert "    | " in out                                     # samples
    assert "Saved the model after 3 epochs" in out and "zen.npz" in out
    model = FastRNN.load(tmp_path / "zen.npz")
    assert len(model.loss_curve_) == 3
    assert set("Beautiful is better than ugly.") <= set(model.vocab_.chars)
    assert model.params_["W_h"].shape == (8, 8)

    first = fastrnn("sample", "zen.npz", "--length", "80", "--seed", "1", cwd=tmp_path)
    assert_clean(first)
    assert len(first.stdout) == 1 + 80 + 1             # start character, 80, newline
    again = fastrnn("sample", "zen.npz", "--length", "80", "--seed", "1", cwd=tmp_path)
    assert again.stdout == first.stdout
    started = fastrnn("sample", "zen.npz", "--start", "Beautiful", "--length", "20",
                      "--temperature", "0.5", cwd=tmp_path)
    assert_clean(started)
    assert started.stdout.startswith("Beautiful") and len(started.stdout) == 9 + 20 + 1


def test_train_on_a_file(tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat.\n" * 20, encoding="utf-8")
    result = fastrnn("train", "corpus.txt", *SMALL, "--cell", "lstm", "--optimizer", "adam",
                     "--epochs", "4", "--seed", "3", "--out", "cat.npz", cwd=tmp_path)
    assert_clean(result)
    assert "Text: corpus.txt, 480 characters, 12 distinct" in result.stdout
    assert "LSTM" in result.stdout
    # the learning rate `fastrnn train --help` documents for adam
    documented = re.search(r"([\d.]+) for adam", " ".join(
        fastrnn("train", "--help", cwd=tmp_path).stdout.split())).group(1)
    assert f"adam, learning rate {documented}," in result.stdout, (documented, result.stdout)
    model = FastRNN.load(tmp_path / "cat.npz")
    assert model.cell_ == "lstm" and len(model.loss_curve_) == 4
    assert model.vocab_ == CharVocab("the cat sat on the mat.\n")
    sampled = fastrnn("sample", "cat.npz", "--start", "the ", "--length", "30", "--seed", "0",
                      cwd=tmp_path)
    assert_clean(sampled)
    assert sampled.stdout.startswith("the ") and len(sampled.stdout) == 4 + 30 + 1


FAMILY = {
    "gru": (["--cell", "gru"], dict(cell_="gru"), "GRU"),
    "2 layers, dropout": (["--layers", "2", "--dropout", "0.2"], dict(n_layers=2, dropout=0.2),
                          "2 layers of"),
    "4 streams": (["--streams", "4"], dict(batch_size=4), "4 streams of 119 characters"),
    "float32": (["--dtype", "float32"], dict(dtype="float32"), ", float32"),
}


@pytest.mark.parametrize("name", list(FAMILY))
def test_train_the_family_then_sample(tmp_path, capsys, name):
    options, attributes, shown = FAMILY[name]
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat.\n" * 20, encoding="utf-8")
    result = fastrnn("train", "corpus.txt", *SMALL, *options, "--epochs", "3",
                     "--sample-every", "0", "--out", "m.npz", cwd=tmp_path)
    assert_clean(result)
    assert shown in result.stdout
    assert "Saved the model after 3 epochs" in result.stdout
    model = FastRNN.load(tmp_path / "m.npz")
    for attribute, value in attributes.items():
        assert getattr(model, attribute) == value, attribute
    assert len(model.loss_curve_) == 3
    sampled = fastrnn("sample", "m.npz", "--start", "the ", "--length", "25", "--seed", "2",
                      cwd=tmp_path)
    assert_clean(sampled)
    assert sampled.stdout.startswith("the ") and len(sampled.stdout) == 4 + 25 + 1
    assert set(sampled.stdout[:-1]) <= set("the cat sat on the mat.\n")


def test_train_streams_loss_per_character(tmp_path):
    """With --streams 4 the loss per character printed is the cross-entropy
    summed over every predicted character of the 4 pieces, divided by their
    number. With a learning rate of 1e-9 the weights hardly move in one
    epoch, so it is the saved model's, computed here by hand: the 479
    next-character pairs cut into 4 pieces of 119, each read from h = 0."""
    text = "the cat sat on the mat.\n" * 20
    (tmp_path / "corpus.txt").write_text(text, encoding="utf-8")
    result = fastrnn("train", "corpus.txt", *SMALL, "--streams", "4", "--lr", "1e-9",
                     "--epochs", "1", "--sample-every", "0", "--out", "m.npz", cwd=tmp_path)
    assert_clean(result)
    model = FastRNN.load(tmp_path / "m.npz")
    p = model.params_
    ids = np.array([model.vocab_.chars.index(ch) for ch in text])
    inputs, targets = ids[:-1][:4 * 119].reshape(4, 119), ids[1:][:4 * 119].reshape(4, 119)
    total = 0.0
    for xs, ys in zip(inputs, targets):
        h = np.zeros(8)
        for x, y in zip(xs, ys):
            h = np.tanh(p["W_x"][:, x] + p["W_h"] @ h + p["b_h"])
            z = p["W_y"] @ h + p["b_y"]
            total += np.log(np.exp(z - z.max()).sum()) - (z[y] - z.max())
    expected = total / (4 * 119)
    printed = re.search(r"epoch 1/1 +loss/char +(\d+\.\d+)", result.stdout).group(1)
    assert float(printed) == pytest.approx(expected, abs=1.5e-3), (printed, expected)
    saved = re.search(r"Saved the model after 1 epoch \(loss/char (\d+\.\d+)\)", result.stdout)
    assert float(saved.group(1)) == pytest.approx(expected, abs=1.5e-3)


def test_saved_model_counts_every_epoch(tmp_path):
    """`fastrnn train` trains in several fit calls (one per log line) and
    saves "as if one fit had run all the epochs": n_iter_ is all of them,
    as loss_curve_ is."""
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "3", "--sample-every", "0",
                     cwd=tmp_path)
    assert_clean(result)
    assert "Saved the model after 3 epochs" in result.stdout
    model = FastRNN.load(tmp_path / "model.npz")
    assert len(model.loss_curve_) == 3
    assert model.n_iter_ == 3


def test_train_default_out_is_model_npz(tmp_path):
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "2", "--sample-every", "0",
                     cwd=tmp_path)
    assert_clean(result)
    assert "    | " not in result.stdout
    assert (tmp_path / "model.npz").exists()
    assert "fastrnn sample model.npz" in result.stdout


# ------------------------------------------------------------- progress
class _TimedStdout(io.TextIOBase):
    """A non-terminal stdout that remembers when each line was completed."""

    def __init__(self):
        self.lines, self._partial = [], ""

    def write(self, text):
        now = time.monotonic()
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        self.lines += [(now, line) for line in done]
        return len(text)

    def isatty(self):
        return False


def test_progress_within_a_long_epoch_on_a_pipe(big_file, tmp_path, monkeypatch):
    """Into a pipe or a file, a progress line (with the percentage of the
    running epoch) is written at least every LOG_SECONDS; here 0.25 s
    instead of 10, so that one epoch of the 420 KB text shows several."""
    from fastrnn import _progress
    from fastrnn.cli import main
    assert _progress.LOG_SECONDS <= 10          # the README: "a line every 10 s elsewhere"
    monkeypatch.setattr(_progress, "LOG_SECONDS", 0.25)
    stream = _TimedStdout()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.chdir(tmp_path)
    code = main(["train", str(big_file), "--epochs", "1", "--sample-every", "0"])
    assert code == 0
    progress = [(t, line) for t, line in stream.lines if line.startswith("epoch ")]
    within = [(t, int(m.group(1))) for t, line in progress
              if (m := re.match(r"epoch 0/1 \+\s*(\d+)%", line))]
    assert len(within) >= 3, stream.lines
    percents = [p for _, p in within]
    assert percents == sorted(percents) and percents[-1] <= 100, percents
    assert progress[-1][1].startswith("epoch 1/1 ")
    gaps = np.diff([t for t, _ in progress])
    assert gaps.max() <= 0.25 + 1.5, gaps                 # LOG_SECONDS plus a busy machine


# ----------------------------------------------------------------- Ctrl-C
def _start_training(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "fastrnn", "train", *map(str, args)],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(process, predicate, timeout=TIMEOUT):
    """Lines of stdout up to the first that satisfies predicate."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if predicate(line):
            return seen
    raise AssertionError(f"never saw the line; got {seen!r} (exit {process.poll()})")


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_ctrl_c_on_a_large_text_stops_within_3_s_and_saves(big_file, tmp_path, cell):
    """The issue: on a text of at least 400 KB, `fastrnn train` stops within
    3 s of SIGINT, exits 130 and has saved a model that `fastrnn sample`
    loads. SIGINT comes half a second after the first progress line, inside
    the compiled training of the next epoch."""
    process = _start_training([big_file, "--cell", cell, "--epochs", "6", "--sample-every", "0",
                               "--out", "m.npz"], tmp_path)
    try:
        _read_until(process, lambda line: line.startswith("epoch "))
        time.sleep(0.5)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        latency = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    print(f"\nCtrl-C latency, --cell {cell}, {big_file.stat().st_size:,} bytes: {latency:.2f} s")
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert latency <= 3.0
    stopped = re.search(r"Interrupted \(Ctrl-C\) after (\d+) of 6 epochs", out)
    assert stopped, out
    done = int(stopped.group(1))
    assert done < 6
    assert re.search(rf"Saved the model after {done} epochs? .*to m\.npz", out), out
    model = FastRNN.load(tmp_path / "m.npz")
    assert model.cell_ == cell
    assert len(model.loss_curve_) == done
    sampled = fastrnn("sample", "m.npz", "--length", "20", "--seed", "0", cwd=tmp_path)
    assert_clean(sampled)
    assert len(sampled.stdout) == 1 + 20 + 1


@pytest.mark.slow
def test_ctrl_c_while_a_sample_is_printed_saves_the_model(tmp_path):
    """Between two blocks of training `fastrnn train` prints a sample; a
    Ctrl-C then must save the model too (twice: at the third line of
    samples, while they are printed)."""
    for attempt in range(2):
        out_file = f"stopped{attempt}.npz"
        process = _start_training(["--hidden", "16", "--epochs", "100000", "--sample-every",
                                   "1", "--out", out_file], tmp_path)
        try:
            count = iter(range(1, 10**6))
            _read_until(process, lambda line: line.startswith("    | ") and next(count) == 3)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 130, err
        assert "Traceback" not in err
        assert "Interrupted (Ctrl-C) after" in out, (out[-300:], err)
        assert "Saved the model after" in out
        assert len(FastRNN.load(tmp_path / out_file).loss_curve_) >= 1


# ------------------------------------------------------------------ plots
def test_plot_without_matplotlib_saves_the_model_first(tmp_path):
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "2", "--plot", "loss.png",
                     cwd=tmp_path, env=env_hiding(tmp_path, "matplotlib"))
    assert_one_line_error(result, "pip install matplotlib", "fastrnn[plot]", code=1)
    assert "Note: --plot needs matplotlib" in result.stdout
    assert "Saved the model after 2 epochs" in result.stdout
    assert len(FastRNN.load(tmp_path / "model.npz").loss_curve_) == 2
    assert not (tmp_path / "loss.png").exists()


def test_plots(tmp_path):
    require("matplotlib", "the --plot options")
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "3", "--plot", "loss.png",
                     cwd=tmp_path)
    assert_clean(result)
    assert "Saved the loss curve to loss.png" in result.stdout
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    result = fastrnn("bench", "--cases", "toy", "--cells", "rnn", "--repeat", "2", "--plot",
                     "bench.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Saved the chart to bench.png" in result.stdout
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# ------------------------------------------------------------------ bench
def test_bench_toy(tmp_path):
    result = fastrnn("bench", "--cases", "toy", "--repeat", "3", cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert f"numpy {np.__version__}" in out and "numba " in out and "Machine: " in out
    assert "toy: the assignment of the lecture notes" in out
    header = next(line for line in out.splitlines() if "reference (numpy)" in line)
    assert "kernel (numba)" in header and "ratio" in header and "torch float64" in header
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("  rnn ", "  lstm ", "  gru "))]
    assert [row[0] for row in rows] == ["rnn", "lstm", "gru"]
    for row in rows:
        reference, kernel = (float(row[i]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[row[i + 1]]
                             for i in (1, 3))
        assert row[5].endswith("x")
        assert float(row[5][:-1]) == pytest.approx(reference / kernel, rel=0.05, abs=0.051)
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch: not installed" in out
    else:
        assert all(len(row) == 10 for row in rows)        # both torch times measured


def test_bench_without_torch(tmp_path):
    result = fastrnn("bench", "--cases", "toy", "--cells", "rnn", "--repeat", "2", cwd=tmp_path,
                     env=env_hiding(tmp_path, "torch"))
    assert_clean(result)
    assert "PyTorch not installed" in result.stdout
    assert "PyTorch: not installed" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("  rnn "))
    assert row.split()[-2:] == ["-", "-"]


# ------------------------------------------------------------------ cache
def test_cache_location_clear_and_recompile(tmp_path):
    """In a private NUMBA_CACHE_DIR: `fastrnn cache` says where fastrnn's
    kernels are and how many; --clear removes them (and nothing else); the
    next run compiles again (Numba's NUMBA_DEBUG_CACHE says so)."""
    private = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(private))
    env.pop("NUMBA_DEBUG_CACHE", None)
    debug = dict(env, NUMBA_DEBUG_CACHE="1")
    one_kernel = [sys.executable, "-c", "import numpy as np; from fastrnn.kernels._checks "
                  "import all_finite; assert all_finite(np.zeros(5))"]

    def compile_run():
        result = subprocess.run(one_kernel, env=debug, cwd=tmp_path, capture_output=True,
                                text=True, timeout=TIMEOUT)
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    assert "data saved to" in compile_run()                 # compiled, written to the cache
    assert "data loaded from" in compile_run()              # loaded: the cache works

    shown = fastrnn("cache", cwd=tmp_path, env=env)
    assert_clean(shown)
    location = re.search(r"fastrnn's compiled kernels: (.+)", shown.stdout).group(1).strip()
    directory = Path(location)
    assert directory.is_dir() and private.resolve() in directory.resolve().parents
    ours = sorted(directory.glob("_checks.all_finite*.nb[ic]"))
    assert len(ours) >= 2
    assert re.search(rf"(?<!\d){len(ours)} files", shown.stdout), shown.stdout
    foreign = directory / "notfastrnn.helper-3.py311.nbi"      # another package's, same folder
    foreign.write_bytes(b"x")
    other = private / "other_package_0123" / "mod.func-1.py311.nbi"
    other.parent.mkdir()
    other.write_bytes(b"x")

    cleared = fastrnn("cache", "--clear", cwd=tmp_path, env=env)
    assert_clean(cleared)
    assert f"Removed {len(ours)} cached kernel files from {location}" in cleared.stdout
    assert not list(directory.glob("_checks.*"))
    assert foreign.exists() and other.exists()
    assert re.search(r"(?<!\d)0 files", fastrnn("cache", cwd=tmp_path, env=env).stdout)

    assert "data saved to" in compile_run()                 # compiled again
    assert list(directory.glob("_checks.all_finite*.nbc"))


# ------------------------------------------------------------- special files
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "symlink to /dev/zero"])
def test_train_refuses_special_files_promptly(tmp_path, kind):
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")             # nobody writes: reading it would block forever
        name, expected = "pipe", "not a regular file but a FIFO"
    elif kind == "/dev/zero":
        name, expected = "/dev/zero", "not a regular file but a character device"
    else:
        os.symlink("/dev/zero", tmp_path / "text.txt")
        name, expected = "text.txt", "not a regular file but a character device"
    start = time.monotonic()
    result = fastrnn("train", name, cwd=tmp_path, timeout=60)
    assert time.monotonic() - start < 30
    assert_one_line_error(result, f"{name}: {expected}", code=1)
    assert result.stdout == ""
    assert not (tmp_path / "model.npz").exists()


# ------------------------------------------------------- damaged model files
def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _zip(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _with_meta(good, **changes):
    meta = json.loads(str(np.load(io.BytesIO(good["meta.npy"]))))
    meta.update(changes)
    return dict(good, **{"meta.npy": _npy(np.array(json.dumps(meta)))})


def _flip(data, start, length=16):
    damaged = bytearray(data)
    for i in range(start, start + length):
        damaged[i] ^= 0xA5
    return bytes(damaged)


def _damaged_member(source, target, member):
    """The bytes of one stored member changed in place (its CRC no longer fits)."""
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo(member)
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 60
    target.write_bytes(_flip(source.read_bytes(), offset))


def _damaged_deflated(source, target):
    """A deflated copy whose compressed stream of W_x.npy is garbage."""
    _zip(target, _members(source), zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo("W_x.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 4
    target.write_bytes(_flip(target.read_bytes(), offset, 24))


MALFORMED = {
    # name: how to make it from the good model (path) in directory d
    "empty.npz": lambda good, d: (d / "empty.npz").write_bytes(b""),
    "truncated.npz": lambda good, d: (d / "truncated.npz").write_bytes(
        good.read_bytes()[:good.stat().st_size // 2]),
    "cut_at_the_end.npz": lambda good, d: (d / "cut_at_the_end.npz").write_bytes(
        good.read_bytes()[:-10]),
    "random.npz": lambda good, d: (d / "random.npz").write_bytes(
        np.random.default_rng(0).bytes(4096)),
    "damaged_member.npz": lambda good, d: _damaged_member(good, d / "damaged_member.npz",
                                                          "W_h.npy"),
    "damaged_meta.npz": lambda good, d: _damaged_member(good, d / "damaged_meta.npz",
                                                        "meta.npy"),
    "damaged_deflate.npz": lambda good, d: _damaged_deflated(good, d / "damaged_deflate.npz"),
    "meta_not_json.npz": lambda good, d: _zip(d / "meta_not_json.npz", dict(
        _members(good), **{"meta.npy": _npy(np.array("{not json"))})),
    "meta_a_list.npz": lambda good, d: _zip(d / "meta_a_list.npz", dict(
        _members(good), **{"meta.npy": _npy(np.array("[1, 2]"))})),
    "meta_pickled.npz": lambda good, d: _zip(d / "meta_pickled.npz", dict(
        _members(good), **{"meta.npy": _npy(np.array([{"format": 1}], dtype=object))})),
    "wrong_shape.npz": lambda good, d: _zip(d / "wrong_shape.npz", dict(
        _members(good), **{"W_h.npy": _npy(np.zeros((3, 3)))})),
    "member_missing.npz": lambda good, d: _zip(d / "member_missing.npz", {
        k: v for k, v in _members(good).items() if k != "W_y.npy"}),
    "nan_weights.npz": lambda good, d: _zip(d / "nan_weights.npz", dict(
        _members(good), **{"W_h.npy": _npy(np.full((8, 8), np.nan))})),
    "vocab_too_short.npz": lambda good, d: _zip(d / "vocab_too_short.npz",
                                                _with_meta(_members(good), vocab="abc")),
    "vocab_a_number.npz": lambda good, d: _zip(d / "vocab_a_number.npz",
                                               _with_meta(_members(good), vocab=5)),
    "not_a_model.npz": lambda good, d: np.savez(d / "not_a_model.npz", a=np.zeros(3)),
    "array.npy": lambda good, d: np.save(d / "array.npy", np.zeros(3)),
    "notes.txt": lambda good, d: (d / "notes.txt").write_text("not a model\n"),
    "novocab.npz": lambda good, d: FastRNN(n_hidden=2, epochs=1).fit(
        np.array([0, 1, 2, 3, 0, 1, 2]), np.array([1, 2, 3, 0, 1, 2, 3])).save(d / "novocab.npz"),
    "regressor.npz": lambda good, d: FastRNNRegressor(n_hidden=2, epochs=1).fit(
        np.ones((2, 3, 1)), np.ones((2, 3))).save(d / "regressor.npz"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_sample_malformed_model_file_is_one_line(tmp_path, monkeypatch, capsys, char_model,
                                                 name):
    MALFORMED[name](char_model, tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process(["sample", name, "--length", "10"], capsys)
    assert_one_line(err, code, 1, f"fastrnn: error: {name}: ")
    assert out == ""
    if name == "novocab.npz":
        assert "no character vocabulary" in err


def test_sample_malformed_model_file_as_a_command(tmp_path, char_model):
    MALFORMED["truncated.npz"](char_model, tmp_path)
    MALFORMED["damaged_member.npz"](char_model, tmp_path)
    for name in ("truncated.npz", "damaged_member.npz"):
        result = fastrnn("sample", name, cwd=tmp_path)
        assert_one_line_error(result, f"{name}: ", code=1)
        assert result.stdout == ""


# ------------------------------------------------------------ user errors
def _files(tmp_path, char_model):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("too short\n")
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)))
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat.\n" * 20)
    (tmp_path / "folder").mkdir()
    (tmp_path / "hello.npz").write_bytes(char_model.read_bytes())
    (tmp_path / "link_to_null").symlink_to("/dev/null")


USER_ERRORS = [
    # (arguments, fragments of the message, exit code)
    (["frobnicate"], ["invalid choice: 'frobnicate'"], 2),
    (["--bogus"], ["unrecognized arguments: --bogus"], 2),
    # demo
    (["demo", "--seed", "-1"], ["--seed", "'-1'"], 2),
    (["demo", "--seed", "x"], ["--seed", "'x'"], 2),
    (["demo", "--params", "folder"], ["--params folder"], 1),
    # train
    (["train", "missing.txt"], ["missing.txt: no such file"], 1),
    (["train", "folder"], ["folder: is a directory"], 1),
    (["train", "empty.txt"], ["empty.txt: the text is empty"], 1),
    (["train", "short.txt"], ["short.txt: the text has 10 characters", "--bptt 25",
                              "at least 26"], 1),
    (["train", "binary.dat"], ["binary.dat: not a UTF-8 text file"], 1),
    (["train", "corpus.txt", "--streams", "100"], ["--streams 100", "at least 2501"], 1),
    (["train", "--hidden", "0"], ["--hidden", "positive integer", "'0'"], 2),
    (["train", "--hidden", "ten"], ["--hidden", "'ten'"], 2),
    (["train", "--hidden", "16777217"], ["--hidden", "at most"], 2),
    # 10**10 parameters: far beyond fastrnn's own bound of 2**31; refused
    # before any work, like every other bound
    (["train", "--hidden", "100000"], ["--hidden", "100000"], 2),
    (["train", "--lr", "-1"], ["--lr", "positive number", "'-1'"], 2),
    (["train", "--lr", "inf"], ["--lr", "positive number"], 2),
    (["train", "--lr", "nan"], ["--lr", "positive number"], 2),
    (["train", "--epochs", "0"], ["--epochs", "positive integer"], 2),
    (["train", "--epochs", "100000001"], ["--epochs", "at most 100,000,000"], 2),
    (["train", "--epochs", str(10**12)], ["--epochs", "at most"], 2),
    (["train", "--bptt", "-3"], ["--bptt", "positive integer"], 2),
    (["train", "--cell", "elman"], ["--cell", "invalid choice: 'elman'"], 2),
    (["train", "--optimizer", "lbfgs"], ["--optimizer", "invalid choice"], 2),
    (["train", "--layers", "0"], ["--layers", "positive integer"], 2),
    (["train", "--layers", "65"], ["--layers", "at most 64"], 2),
    (["train", "--dropout", "1"], ["--dropout", "[0, 1)", "'1'"], 2),
    (["train", "--dropout", "-0.1"], ["--dropout", "[0, 1)"], 2),
    (["train", "--dropout", "half"], ["--dropout", "'half'"], 2),
    # dropout acts between layers: with one layer it would do nothing
    (["train", "corpus.txt", "--dropout", "0.2"], ["--dropout", "--layers"], 2),
    (["train", "--streams", "0"], ["--streams", "positive integer"], 2),
    (["train", "--sample-every", "-1"], ["--sample-every", "'-1'"], 2),
    (["train", "--seed", "-1"], ["--seed", "'-1'"], 2),
    (["train", "--out", "no/such/dir/m.npz"], ["--out no/such/dir/m.npz", "does not exist"], 1),
    (["train", "--out", "folder"], ["--out folder: is a directory"], 1),
    # written as a regular file, renamed into place: a device is refused up front
    (["train", "--out", "/dev/null"], ["--out /dev/null: exists and is not a regular file"], 1),
    (["train", "--out", "link_to_null"], ["--out link_to_null: exists and is not a regular"],
     1),
    (["train", "--plot", "folder"], ["--plot folder: is a directory"], 1),
    (["train", "--plot", "no/such/dir/p.png"], ["--plot no/such/dir/p.png", "does not exist"],
     1),
    # sample
    (["sample"], ["the following arguments are required: MODEL"], 2),
    (["sample", "missing.npz"], ["missing.npz: no such file"], 1),
    (["sample", "folder"], ["folder: is a directory"], 1),
    (["sample", "hello.npz", "--temperature", "0"], ["--temperature", "positive number"], 2),
    (["sample", "hello.npz", "--temperature", "-1"], ["--temperature"], 2),
    (["sample", "hello.npz", "--temperature", "nan"], ["--temperature"], 2),
    (["sample", "hello.npz", "--length", "0"], ["--length", "positive integer"], 2),
    (["sample", "hello.npz", "--length", str(10**12)], ["--length", "at most"], 2),
    (["sample", "hello.npz", "--length", "100000001"], ["--length", "at most 100,000,000"], 2),
    (["sample", "hello.npz", "--start", "hello Q"],
     ["--start: the character 'Q' is not in the model's vocabulary"], 1),
    (["sample", "hello.npz", "--start", "xyz"], ["the characters 'x', 'y', 'z' are not"], 1),
    (["sample", "hello.npz", "--start", ""], ["--start: expected at least one character"], 1),
    (["sample", "hello.npz", "--seed", "-1"], ["--seed"], 2),
    # bench
    (["bench", "--cases", "nope"], ["--cases", "invalid choice: 'nope'"], 2),
    (["bench", "--repeat", "0"], ["--repeat", "positive integer"], 2),
    (["bench", "--cells", "elman"], ["--cells", "invalid choice"], 2),
    (["bench", "--plot", "folder"], ["--plot folder: is a directory"], 1),
    # why
    (["why", "--hidden", "0"], ["--hidden", "positive integer"], 2),
    (["why", "--hidden", "4097"], ["--hidden", "at most 4,096"], 2),
    (["why", "--steps", "0"], ["--steps", "at least 51", "'0'"], 2),
    (["why", "--steps", str(10**9)], ["--steps", "at most"], 2),
    (["why", "--steps", "50"], ["--steps", "at least 51", "'50'"], 2),
    (["why", "--seed", "-1"], ["--seed"], 2),
    (["why", "--plot", "folder"], ["--plot folder: is a directory"], 1),
    (["why", "--plot", "no/such/dir/w.png"], ["--plot no/such/dir/w.png", "does not exist"], 1),
    # cache
    (["cache", "--dtypes", "float16"], ["--dtypes", "invalid choice: 'float16'"], 2),
    (["cache", "--everything"], ["unrecognized arguments: --everything"], 2),
]


@pytest.mark.parametrize("args, fragments, code", USER_ERRORS,
                         ids=[" ".join(case[0]) or "none" for case in USER_ERRORS])
def test_user_errors(tmp_path, monkeypatch, capsys, char_model, args, fragments, code):
    _files(tmp_path, char_model)
    monkeypatch.chdir(tmp_path)
    result = in_process(args, capsys)
    assert_one_line(result[2], result[0], code, *fragments)
    assert "Traceback" not in result[1]
    assert not (tmp_path / "model.npz").exists()


@pytest.mark.parametrize("args, code", [
    (["train", "missing.txt"], 1),
    (["train", "--hidden", "0"], 2),
    (["train", "--epochs", str(10**12)], 2),
    (["sample", "hello.npz", "--length", str(10**12)], 2),
    (["sample", "notes.txt"], 1),
    (["demo", "--params", "missing.npz"], 1),
    (["bench", "--repeat", "0"], 2),
    (["why", "--steps", "0"], 2),
    (["cache", "--dtypes", "float16"], 2),
    (["frobnicate"], 2),
], ids=lambda value: " ".join(value) if isinstance(value, list) else str(value))
def test_user_errors_as_a_command(tmp_path, char_model, args, code):
    """The same errors through `python -m fastrnn`: one line, the exit code."""
    _files(tmp_path, char_model)
    (tmp_path / "notes.txt").write_text("not a model\n")
    result = fastrnn(*args, cwd=tmp_path)
    assert_one_line_error(result, "fastrnn: error: ", code=code)
    assert "Traceback" not in result.stdout


def test_a_model_that_cannot_be_saved_where_asked_is_saved_elsewhere(tmp_path, char_model):
    """Training may take hours and --out become unwritable meanwhile (its
    directory removed, the disk full): the model goes to a file of its own in
    the temporary directory, and the message says where."""
    from fastrnn import FastRNN
    from fastrnn.cli.charlm import _save_model
    model = FastRNN.load(char_model)
    gone = tmp_path / "gone"
    gone.mkdir()
    gone.rmdir()
    saved, failure = _save_model(model, str(gone / "m.npz"))
    try:
        assert failure and saved != str(gone / "m.npz") and not gone.exists()
        assert os.path.dirname(saved) == tempfile.gettempdir()
        again = FastRNN.load(saved)
        for key, value in model.params_.items():
            assert np.array_equal(again.params_[key], value), key
        assert again.vocab_.chars == model.vocab_.chars
    finally:
        os.unlink(saved)
    written, failure = _save_model(model, str(tmp_path / "m.npz"))
    assert failure is None and written == str(tmp_path / "m.npz")


def test_when_the_rescue_fails_too_one_error_and_no_file_left(tmp_path, char_model,
                                                               monkeypatch):
    from fastrnn import FastRNN
    from fastrnn.cli.charlm import _save_model
    model = FastRNN.load(char_model)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def full_disk(path):
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(model, "save", full_disk)
    with pytest.raises(CLIError, match=r"^--out m\.npz: No space left on device; saving to "
                                       r".* failed too"):
        _save_model(model, "m.npz")
    assert not any((tmp_path / "tmp").iterdir())
