"""The `fastrnn` command, driven as a user drives it: `python -m fastrnn ...`
in a subprocess, in a fresh directory, reading what it prints."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastrnn import CharVocab, FastRNN

# Generous: the first run on a fresh machine compiles the training kernels.
TIMEOUT = 600
SMALL = ["--hidden", "8", "--bptt", "10"]


def fastrnn(*args, cwd, env=None, timeout=TIMEOUT):
    return subprocess.run([sys.executable, "-m", "fastrnn", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def assert_clean(result):
    """Exit 0, nothing on stderr but possibly notes: no traceback, no warning."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr, result.stderr


def assert_one_line_error(result, *fragments, code=None):
    assert result.returncode != 0
    if code is not None:
        assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastrnn: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


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


# ------------------------------------------------------------------ demo
@pytest.mark.slow
@pytest.mark.parametrize("args", [["demo"], []], ids=["demo", "bare"])
def test_demo(tmp_path, args):
    result = fastrnn(*args, cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert "The assignment of the lecture notes" in out
    assert "dL/dW_h" in out
    assert "largest: " in out and "(agree)" in out
    assert "Final predictions: [1 2 3]" in out
    assert "It predicts the shifted sequence from epoch" in out
    assert "(bound 1e-12: agree)" in out
    assert "numba is" in out and "the speed of numpy" in out


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", ["", "demo", "train", "sample", "bench"])
def test_help(tmp_path, command):
    result = fastrnn(*([command] if command else []), "--help", cwd=tmp_path)
    assert_clean(result)
    assert result.stdout.startswith(f"usage: fastrnn {command}".rstrip())
    if not command:
        for name in ("demo", "train", "sample", "bench"):
            assert f"  {name} " in result.stdout


def test_version(tmp_path):
    result = fastrnn("--version", cwd=tmp_path)
    assert_clean(result)
    assert result.stdout.startswith("fastrnn ")


# ------------------------------------------------------------ train/sample
@pytest.mark.slow
def test_train_default_text_then_sample(tmp_path):
    result = fastrnn("train", "--hidden", "8", "--epochs", "3", "--out", "zen.npz", cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert "Text: the default text (the Zen of Python" in out
    assert "epoch 3/3" in out and "loss/char" in out and "chars/s" in out
    assert "    | " in out                                     # samples
    assert "Saved the model after 3 epochs" in out and "zen.npz" in out
    model = FastRNN.load(tmp_path / "zen.npz")
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
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


@pytest.mark.slow
def test_train_on_a_file(tmp_path):
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat.\n" * 20, encoding="utf-8")
    result = fastrnn("train", "corpus.txt", *SMALL, "--cell", "lstm", "--optimizer", "adam",
                     "--epochs", "4", "--seed", "3", "--out", "cat.npz", cwd=tmp_path)
    assert_clean(result)
    assert "Text: corpus.txt, 480 characters, 12 distinct" in result.stdout
    assert "LSTM" in result.stdout and "adam, learning rate 0.001" in result.stdout
    model = FastRNN.load(tmp_path / "cat.npz")
    assert model.cell_ == "lstm" and model.n_iter_ == 4
    assert model.vocab_ == CharVocab("the cat sat on the mat.\n")
    sampled = fastrnn("sample", "cat.npz", "--start", "the ", "--length", "30", "--seed", "0",
                      cwd=tmp_path)
    assert_clean(sampled)
    assert sampled.stdout.startswith("the ")


@pytest.mark.slow
def test_train_default_out_is_model_npz(tmp_path):
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "2", "--sample-every", "0",
                     cwd=tmp_path)
    assert_clean(result)
    assert "    | " not in result.stdout
    assert (tmp_path / "model.npz").exists()
    assert "fastrnn sample model.npz" in result.stdout


@pytest.mark.slow
def test_ctrl_c_saves_the_model(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "fastrnn", "train", "--hidden", "16", "--epochs", "100000",
         "--sample-every", "1", "--out", "stopped.npz"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:            # wait until it trains
            line = process.stdout.readline()
            if not line or line.startswith("epoch"):
                break
        assert line.startswith("epoch"), line
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Interrupted (Ctrl-C) after" in out
    assert "Saved the model after" in out
    model = FastRNN.load(tmp_path / "stopped.npz")
    assert 1 <= model.n_iter_ < 100000
    assert len(model.loss_curve_) == model.n_iter_


@pytest.mark.slow
def test_plot_without_matplotlib_saves_the_model_first(tmp_path):
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "2", "--plot", "loss.png",
                     cwd=tmp_path, env=env_hiding(tmp_path, "matplotlib"))
    assert_one_line_error(result, "pip install matplotlib", "fastrnn[plot]", code=1)
    assert "Note: --plot needs matplotlib" in result.stdout
    assert "Saved the model after 2 epochs" in result.stdout
    assert FastRNN.load(tmp_path / "model.npz").n_iter_ == 2
    assert not (tmp_path / "loss.png").exists()


@pytest.mark.slow
def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "t.txt").write_text("abcdefghij" * 10, encoding="utf-8")
    result = fastrnn("train", "t.txt", *SMALL, "--epochs", "3", "--plot", "loss.png",
                     cwd=tmp_path)
    assert_clean(result)
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")
    result = fastrnn("bench", "--cases", "toy", "--cells", "rnn", "--repeat", "2", "--plot",
                     "bench.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bench.png").read_bytes().startswith(b"\x89PNG")


# ------------------------------------------------------------------ bench
@pytest.mark.slow
def test_bench_toy(tmp_path):
    result = fastrnn("bench", "--cases", "toy", "--repeat", "3", cwd=tmp_path)
    assert_clean(result)
    out = result.stdout
    assert f"numpy {np.__version__}" in out and "numba " in out and "Machine: " in out
    assert "toy: the assignment of the lecture notes" in out
    header = next(line for line in out.splitlines() if "reference (numpy)" in line)
    assert "kernel (numba)" in header and "ratio" in header and "torch float64" in header
    rows = [line.split() for line in out.splitlines() if line.startswith(("  rnn ", "  lstm "))]
    assert [row[0] for row in rows] == ["rnn", "lstm"]
    for row in rows:
        assert row[5].endswith("x") and float(row[5][:-1]) > 0          # the ratio
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch: not installed" in out
    else:
        assert all(len(row) == 10 for row in rows)        # both torch times measured


@pytest.mark.slow
def test_bench_without_torch(tmp_path):
    result = fastrnn("bench", "--cases", "toy", "--cells", "rnn", "--repeat", "2", cwd=tmp_path,
                     env=env_hiding(tmp_path, "torch"))
    assert_clean(result)
    assert "PyTorch not installed" in result.stdout
    assert "PyTorch: not installed" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("  rnn "))
    assert row.split()[-2:] == ["-", "-"]


# ------------------------------------------------------------ user errors
def _files(tmp_path, char_model):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("too short\n")
    (tmp_path / "binary.dat").write_bytes(bytes(range(256)))
    (tmp_path / "notes.txt").write_text("not a model\n")
    (tmp_path / "folder").mkdir()
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    np.save(tmp_path / "array.npy", np.zeros(3))
    ids = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    FastRNN(n_hidden=2, epochs=1).fit(ids[:-1], ids[1:]).save(tmp_path / "novocab.npz")
    (tmp_path / "hello.npz").write_bytes(char_model.read_bytes())


USER_ERRORS = [
    # (arguments, fragments of the message, exit code)
    (["train", "missing.txt"], ["missing.txt: no such file"], 1),
    (["train", "folder"], ["folder: is a directory"], 1),
    (["train", "empty.txt"], ["empty.txt: the text is empty"], 1),
    (["train", "short.txt"], ["short.txt: the text has 10 characters", "--bptt 25",
                              "at least 26"], 1),
    (["train", "binary.dat"], ["binary.dat: not a UTF-8 text file"], 1),
    (["train", "--hidden", "0"], ["--hidden", "positive integer", "'0'"], 2),
    (["train", "--lr", "-1"], ["--lr", "positive number", "'-1'"], 2),
    (["train", "--lr", "inf"], ["--lr", "positive number"], 2),
    (["train", "--epochs", "0"], ["--epochs", "positive integer"], 2),
    (["train", "--bptt", "-3"], ["--bptt", "positive integer"], 2),
    (["train", "--hidden", "ten"], ["--hidden", "'ten'"], 2),
    (["train", "--cell", "gru"], ["--cell", "invalid choice: 'gru'"], 2),
    (["train", "--optimizer", "lbfgs"], ["--optimizer", "invalid choice"], 2),
    (["train", "--out", "no/such/dir/m.npz"], ["--out no/such/dir/m.npz", "does not exist"], 1),
    (["train", "--out", "folder"], ["--out folder: is a directory"], 1),
    (["sample", "missing.npz"], ["missing.npz: no such file"], 1),
    (["sample", "notes.txt"], ["notes.txt: not a fastrnn model file"], 1),
    (["sample", "array.npy"], ["array.npy: not a fastrnn model file"], 1),
    (["sample", "other.npz"], ["other.npz: not a fastrnn model file"], 1),
    (["sample", "folder"], ["folder: is a directory"], 1),
    (["sample", "novocab.npz"], ["novocab.npz", "no character vocabulary"], 1),
    (["sample", "hello.npz", "--temperature", "0"], ["--temperature", "positive number"], 2),
    (["sample", "hello.npz", "--temperature", "-1"], ["--temperature"], 2),
    (["sample", "hello.npz", "--length", "0"], ["--length", "positive integer"], 2),
    (["sample", "hello.npz", "--start", "hello Q"],
     ["--start: the character 'Q' is not in the model's vocabulary"], 1),
    (["sample", "hello.npz", "--start", "xyz"], ["the characters 'x', 'y', 'z' are not"], 1),
    (["sample", "hello.npz", "--start", ""], ["--start: expected at least one character"], 1),
    (["sample", "hello.npz", "--seed", "-1"], ["--seed"], 2),
    (["sample"], ["the following arguments are required: MODEL"], 2),
    (["bench", "--cases", "nope"], ["--cases", "invalid choice: 'nope'"], 2),
    (["bench", "--repeat", "0"], ["--repeat", "positive integer"], 2),
    (["bench", "--cells", "gru"], ["--cells", "invalid choice"], 2),
    (["frobnicate"], ["invalid choice: 'frobnicate'"], 2),
]


@pytest.mark.parametrize("args, fragments, code", USER_ERRORS,
                         ids=[" ".join(case[0]) or "none" for case in USER_ERRORS])
def test_user_errors(tmp_path, char_model, args, fragments, code):
    _files(tmp_path, char_model)
    result = fastrnn(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments, code=code)
    assert not (tmp_path / "model.npz").exists()
