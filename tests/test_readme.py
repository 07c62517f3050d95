"""The README's Python examples run as written, in order, in a fresh
directory, and print what their comments say they print."""
import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.slow
def test_readme_python_examples_run_and_print_what_they_say(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
    printed = out.getvalue()
    # The claims the comments make:
    assert "['W_h', 'W_x', 'W_y', 'b_h', 'b_y']" in printed
    assert "y: class ids must lie in [0, 3], found 4 at index (2,)" in printed
    assert printed.count("[1 2 3]") >= 2                   # the RNN and the LSTM learn the toy
    assert "(3, 4) 1.0" in printed
    assert printed.count("True") >= 2                      # save/load, and the PyTorch round trip
    per_char = [tuple(map(float, line.split())) for line in printed.splitlines()
                if re.fullmatch(r"\d+\.\d+(e-?\d+)? \d+\.\d+(e-?\d+)?", line.strip())]
    assert any(start > 3.5 and end < 0.01 for start, end in per_char), per_char   # 3.9 -> 0.003
    assert (tmp_path / "fox.npz").exists()
