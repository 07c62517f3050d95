"""The public API is typed (``py.typed``): a user's script that calls
init_params, forward, loss_and_grad, gradcheck, the estimators, fit_many, a
Stream and CharVocab passes ``mypy --strict``, and a wrong call is caught."""
import os
import subprocess
import sys
import textwrap

import pytest

from _optional import require

SCRIPT = textwrap.dedent('''
    """A user's script: what mypy --strict must accept."""
    import numpy as np
    import fastrnn
    from fastrnn import CharVocab, FastRNN, FastRNNRegressor

    params = fastrnn.init_params(4, 3, cell="lstm", random_state=0, n_layers=2)
    X = np.eye(4)[[0, 1, 2]]
    probs, state = fastrnn.forward(params, X)
    loss, grads = fastrnn.loss_and_grad(params, X, np.array([1, 2, 3]))
    total: float = loss + 1.0
    report = fastrnn.gradcheck(params, X, np.array([1, 2, 3]), max_coordinates=3)
    ok: bool = report.ok
    model = FastRNN(n_hidden=3, random_state=0).fit(X, [1, 2, 3])
    labels = model.predict(X)
    accuracy: float = model.score(X, [1, 2, 3])
    curve: list[float] = model.loss_curve_
    reg = FastRNNRegressor(n_hidden=4, epochs=5).fit(X, X[:, 0])
    models = fastrnn.fit_many(reg, [X, X], [X[:, 0], X[:, 1]])
    first: FastRNNRegressor = models[0]
    vocab = CharVocab("hello")
    text: str = vocab.decode(vocab.encode("hell"))
    model.save("model.npz")
    same: FastRNN = FastRNN.load("model.npz")
    stream = model.stream()
    step = stream.step(X[0])
    stream.reset(stream.state)
    print(total, ok, labels, accuracy, curve[-1], first.n_iter_, text, same.n_iter_, step)
''')


def _mypy(tmp_path, source):
    require("mypy", "mypy checks the public API's annotations")
    (tmp_path / "user.py").write_text(source)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir",
                           str(tmp_path / ".mypy_cache"), "user.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_users_script_passes_mypy_strict(tmp_path):
    result = _mypy(tmp_path, SCRIPT)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = subprocess.run([sys.executable, "user.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=dict(os.environ))
    assert ran.returncode == 0, ran.stderr[-2000:]


@pytest.mark.slow
def test_mypy_catches_a_wrong_call(tmp_path):
    """The annotations say something: a str where an int goes is an error."""
    result = _mypy(tmp_path, SCRIPT + 'fastrnn.init_params("four", 3)\n'
                                      'FastRNN(n_hidden="many")\n')
    assert result.returncode == 1
    assert result.stdout.count("error:") == 2, result.stdout
