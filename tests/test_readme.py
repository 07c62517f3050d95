"""The README's Python examples run as written, in order, in a fresh
directory, and print what their comments say they print.

Each ```python block runs once (a module fixture), in one namespace as a
reader pasting them into one session would; right after a block, its own
claims are checked (the values it leaves behind are overwritten by later
blocks). Every check first finds the comment it checks in the block's text,
so a changed README fails here until the claims are checked again. A block
must not warn: a reader would see the warning.
"""
import contextlib
import io
import os
import re
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


BLOCKS = python_blocks()


class Block:
    """What a block did: its source, its printed lines, its namespace."""

    def __init__(self, source, printed, namespace):
        self.source, self.lines, self.ns = source, printed.splitlines(), namespace

    def says(self, comment):
        """The block has this comment (the claim about to be checked)."""
        assert f"# {comment}" in self.source, f"the README no longer says '# {comment}'"


CHECKS = []      # (a line that identifies the block, its check), in README order


def claims(marker):
    def register(function):
        CHECKS.append((marker, function))
        return function
    return register


@claims("params = fastrnn.init_params(n_inputs=4, n_hidden=3, random_state=0)")
def _functional(b):
    ns = b.ns
    fastrnn = ns["fastrnn"]
    b.says("x_1, x_2, x_3 one-hot: one sequence, shape (T, k) = (3, 4)")
    np.testing.assert_array_equal(ns["X"], np.eye(4)[[0, 1, 2]])
    b.says("y_t one-hot, shape (3, 4); class ids [1, 2, 3] work too")
    np.testing.assert_array_equal(ns["Y"], np.eye(4)[[1, 2, 3]])
    loss_ids_y = fastrnn.loss_and_grad(ns["params"], ns["X"], np.array([1, 2, 3]))[0]
    assert loss_ids_y == pytest.approx(fastrnn.loss_and_grad(ns["params"], ns["X"], ns["Y"])[0],
                                       rel=1e-15)
    b.says("['W_h', 'W_x', 'W_y', 'b_h', 'b_y']")
    assert b.lines[0] == "['W_h', 'W_x', 'W_y', 'b_h', 'b_y']"
    b.says("ŷ_t: (3, 4); h_T: (3,)")
    probs, h_last = fastrnn.forward(ns["params"], ns["X"])
    assert probs.shape == (3, 4) and h_last.shape == (3,)
    b.says("grads: the keys and shapes of params")
    assert {k: v.shape for k, v in ns["grads"].items()} == \
        {k: v.shape for k, v in ns["params"].items()}
    b.says("every h_t: (3, 3)")
    assert ns["H"].shape == (3, 3)
    b.says("True: round-off")
    assert b.lines[1] == "True"
    assert len(b.lines) == 2
    # The prose below the block: uniform in [-1/√d, 1/√d], zero biases.
    bound = 1 / np.sqrt(3)
    p = ns["params"]
    assert all(np.abs(p[k]).max() <= bound for k in ("W_x", "W_h", "W_y"))
    assert not p["b_h"].any() and not p["b_y"].any()


@claims("ids = np.array([0, 1, 2])")
def _ids(b):
    ns = b.ns
    b.says("0.0: the same network, the same loss")
    assert b.lines == ["0.0"]
    b.says("two sequences, lengths 5 and 2")
    assert [len(s) for s in ns["seqs"]] == [5, 2]
    b.says("a list of (5, 4) and (2, 4); h_last (2, 3)")
    probs, h_last = ns["fastrnn"].forward(ns["params"], ns["seqs"])
    assert isinstance(probs, list) and [p.shape for p in probs] == [(5, 4), (2, 4)]
    assert h_last.shape == (2, 3)
    b.says("dh0 = ∂L/∂h_0: (2, 3)")
    assert ns["dh0"].shape == (2, 3)


@claims("fastrnn.loss_and_grad(params, X, np.array([1, 2, 4]))")
def _error(b):
    b.says("y: class ids must lie in [0, 3], found 4 at index (2,)")
    assert b.lines == ["y: class ids must lie in [0, 3], found 4 at index (2,)"]


@claims('values = np.sin(np.arange(20.0))[None, :, None]')
def _heads(b):
    b.says("one series, (B, T, k) = (1, 20, 1)")
    assert b.ns["values"].shape == (1, 20, 1)
    b.says("(1, 1): one value for the sequence")
    assert b.lines == ["(1, 1)"]


@claims('deep = fastrnn.init_params(4, 3, cell="lstm", n_layers=2, bidirectional=True')
def _family(b):
    ns = b.ns
    b.says("14 (12, 6): layer 1 reads 2d = 6")
    assert b.lines[0] == "14 (12, 6)"
    assert len(ns["deep"]) == 14 and ns["deep"]["W_x_l1_reverse"].shape == (12, 6)
    b.says("an LSTM's state is (h, c)")
    assert ns["h_last"].shape == ns["c_last"].shape == (4, 3)
    b.says("(4, 3): 2 layers x 2 directions")
    assert b.lines[1] == "(4, 3)"
    assert ns["dh0"].shape == ns["dc0"].shape == (4, 3)
    assert len(b.lines) == 2


@claims("report = fastrnn.gradcheck(params, X, Y)")
def _gradcheck(b):
    b.says("True True")
    assert b.lines == ["True True"]


@claims("model = FastRNN(n_hidden=3, random_state=0).fit(X, [1, 2, 3])")
def _estimator(b):
    b.says("[1 2 3]: the shifted sequence")
    assert b.lines[0] == "[1 2 3]"
    b.says("(3, 3) 1.0")
    assert b.lines[1] == "(3, 3) 1.0"
    assert len(b.lines) == 2


@claims('clf = FastRNN(n_hidden=16, cell="gru", batch_size=32, epochs=20, random_state=0)')
def _classifier_and_regressor(b):
    ns = b.ns
    b.says("400 sequences of 12 symbols")
    assert ns["seqs"].shape == (400, 12)
    b.says("one label each")
    assert ns["labels"].shape == (400,)
    b.says("10 updates an epoch")
    assert -(-300 // ns["clf"].batch_size) == 10
    b.says("last_step 1.0")
    assert b.lines[0] == "last_step 1.0"
    b.says("True: R² on held-out series")
    assert b.lines[1] == "True"
    assert len(b.lines) == 2


@claims('text = "the quick brown fox jumps over the lazy dog. " * 40')
def _char_model(b):
    ns = b.ns
    b.says("any str: 1800 characters here")
    assert len(ns["text"]) == 1800
    b.says("per character: 3.9 -> 0.003")
    first, last = map(float, b.lines[0].split())
    assert round(first, 1) == 3.9 and round(last, 3) == 0.003, b.lines[0]
    b.says("it knows the text by heart")
    assert len(b.lines[1]) == 60
    assert "the " + b.lines[1] in ns["text"], b.lines[1]
    b.says(".npz + JSON, loads without pickle")
    with np.load("fox.npz", allow_pickle=False) as data:          # no object arrays in it
        assert "meta.npy" in data.files or "meta" in data.files
        for name in data.files:
            assert data[name].dtype != object
    b.says("True")
    assert b.lines[2] == "True"
    assert len(b.lines) == 3


@claims("p, state = model.predict_proba(x_t[None], h0=state, return_state=True)")
def _streaming(b):
    b.says("True")
    assert b.lines == ["True"]


@claims("stream = model.stream()")
def _stream(b):
    b.says("True")
    assert b.lines == ["True"]
    state = b.ns["stream"].state
    assert isinstance(state, np.ndarray) and state.shape == (100,)
    assert np.array_equal(state, b.ns["model"].predict_proba(b.ns["ids"][:5],
                                                            return_state=True)[1])


@claims("rnn_state, linear_state = to_torch_state_dict(deep)")
def _torch(b):
    b.says("weight_ih_l0, ..., weight_hh_l1_reverse")
    assert {"weight_ih_l0", "weight_hh_l1_reverse"} <= set(b.ns["rnn_state"])
    b.says("True")
    assert b.lines == ["True"]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run every block in order in a fresh directory; check each block's
    claims right after it. Returns, per block, a list of problems."""
    directory = tmp_path_factory.mktemp("readme")
    previous = os.getcwd()
    os.chdir(directory)
    namespace, problems = {}, []
    try:
        for i, (source, (marker, check)) in enumerate(zip(BLOCKS, CHECKS)):
            found = []
            out = io.StringIO()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    with contextlib.redirect_stdout(out):
                        exec(compile(source, f"README.md python block {i}", "exec"), namespace)
                except Exception:
                    found.append("raised:\n" + traceback.format_exc())
            found += [f"warned: {w.category.__name__}: {w.message} "
                      f"({w.filename}:{w.lineno})" for w in caught]
            if marker not in source:
                found.append(f"block {i} is no longer the one with {marker!r}")
            elif not any(p.startswith("raised") for p in found):
                try:
                    check(Block(source, out.getvalue(), namespace))
                except AssertionError as exc:
                    found.append(f"a claim is not what it prints: {exc}\nprinted:\n"
                                 f"{out.getvalue()}\n{traceback.format_exc()}")
            problems.append(found)
    finally:
        os.chdir(previous)
    return problems


def test_every_python_block_has_its_claims_checked():
    assert len(BLOCKS) == len(CHECKS), (len(BLOCKS), len(CHECKS))
    for source, (marker, _) in zip(BLOCKS, CHECKS):
        assert marker in source, marker


@pytest.mark.parametrize("index", range(len(CHECKS)),
                         ids=[check.__name__.strip("_") for _, check in CHECKS])
def test_readme_block_runs_and_prints_what_it_says(readme_run, index):
    assert index < len(readme_run), "the README has fewer python blocks than checks"
    assert not readme_run[index], "\n".join(readme_run[index])


# ------------------------------------------------------ the command lines
def readme_command_lines():
    """Every `fastrnn ...` command the README shows: the lines of its bash
    blocks and its inline code, comments cut, usage placeholders (MODEL)
    given a value; a usage line with [optional] parts is left out."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        commands += [line.split("#")[0].strip() for line in block.splitlines()
                     if line.startswith("fastrnn ")]
    commands += re.findall(r"`(fastrnn [^`]*)`", text)
    return sorted({c.replace("MODEL", "model.npz") for c in commands if "[" not in c})


def test_readme_shows_the_command_line():
    commands = readme_command_lines()
    for expected in ("fastrnn demo", "fastrnn why --plot why.png", "fastrnn cache --clear"):
        assert expected in commands, commands


@pytest.mark.parametrize("command", readme_command_lines())
def test_readme_command_line_is_accepted(command, capsys):
    """The options the README shows exist: `fastrnn`'s own parser takes
    each command line (parsing only, nothing runs)."""
    import shlex
    from fastrnn.cli import build_parser
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        pytest.fail(f"{command!r}: exit {exc.code}: {capsys.readouterr().err.strip()}")
