"""fastrnn bench says, in its text and on its chart, what makes its times
untrustworthy: a busy machine, calls whose times spread widely, OpenBLAS
pinned to a CPU type; and it names the versions and NumPy's BLAS."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastrnn.cli import bench
from fastrnn.cli._util import Timing, time_calls


def fake_clock(durations):
    """A clock under which the calls take ``durations`` seconds in turn."""
    readings = iter(np.cumsum(np.repeat(durations, 2) * np.tile([0, 1], len(durations))))
    return lambda: float(next(readings))


def test_timing_is_the_median_and_quartiles_of_the_calls():
    timing = time_calls(lambda: None, 8, warm_up=False, clock=fake_clock([5, 1, 8, 2, 7, 3, 6, 4]))
    # 1..8: quartiles at positions 9/4, 9/2, 27/4 of the sorted times.
    assert timing == (4.5, 2.25, 6.75)
    assert timing.noisy
    few = time_calls(lambda: None, 3, warm_up=False, clock=fake_clock([3, 1, 2]))
    assert few == (2, 1, 3)


def test_warm_up_call_is_not_timed():
    calls = []
    timing = time_calls(lambda: calls.append(1), 2, clock=fake_clock([1, 1]))
    assert len(calls) == 3 and timing.median == 1


def test_noisy_means_the_middle_half_spreads_over_a_quarter_of_the_median():
    assert not Timing(1.0, 0.9, 1.1).noisy
    assert not Timing(1.0, 0.9, 1.15).noisy
    assert Timing(1.0, 0.8, 1.1).noisy


def test_environment_warnings(monkeypatch):
    monkeypatch.setattr(bench, "usable_cores", lambda: 2)
    for name in bench.OPENBLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert bench.environment_warnings(0.5) == []
    assert bench.environment_warnings(None) == []
    busy, = bench.environment_warnings(2.5)
    assert "busy machine" in busy and "2.50" in busy and "2 usable cores" in busy
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    pinned, = bench.environment_warnings(0.5)
    assert pinned.startswith("OPENBLAS_CORETYPE=Haswell set") and "unset it" in pinned


def test_the_chart_shows_noise_and_warnings(tmp_path):
    pytest.importorskip("matplotlib")
    from fastrnn.cli.plot import plot_bench
    quiet, noisy = Timing(1e-3, 0.95e-3, 1.05e-3), Timing(1e-3, 0.5e-3, 3e-3)
    kernel = Timing(1e-4, 0.99e-4, 1.01e-4)
    rows = [{"case": "toy", "cell": "rnn", "reference": quiet, "kernel": kernel,
             "torch32": noisy, "torch64": None},
            {"case": "toy", "cell": "lstm", "reference": noisy, "kernel": kernel,
             "torch32": quiet, "torch64": None}]
    lines = ["Machine: a CPU", "Software: numpy 9"]
    fig = plot_bench(str(tmp_path / "b.png"), rows, lines, ["busy machine: load 9"])
    assert (tmp_path / "b.png").read_bytes().startswith(b"\x89PNG")
    ax, = fig.axes
    bars = [p for p in ax.patches]
    # Series in order reference, torch32 (torch64 was never measured).
    assert [bar.get_height() for bar in bars] == pytest.approx([10.0, 10.0, 10.0, 10.0])
    assert [bool(bar.get_hatch()) for bar in bars] == [False, True, True, False]
    assert "busy machine: load 9" in fig._suptitle.get_text()
    assert "Machine: a CPU" in ax.get_title() and "Software: numpy 9" in ax.get_title()
    quiet_fig = plot_bench(str(tmp_path / "c.png"), rows[:1], lines, [])
    assert quiet_fig._suptitle is None


def test_bench_names_the_blas_and_warns_of_a_pinned_openblas(tmp_path):
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    env.pop("OPENBLAS_L2_SIZE", None)
    result = subprocess.run([sys.executable, "-m", "fastrnn", "bench", "--cases", "toy",
                             "--cells", "rnn", "--repeat", "2"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    software = next(line for line in result.stdout.splitlines() if line.startswith("Software:"))
    assert "(BLAS: " in software
    assert "Warning: OPENBLAS_CORETYPE=Haswell set" in result.stdout
    env.pop("OPENBLAS_CORETYPE")
    result = subprocess.run([sys.executable, "-m", "fastrnn", "bench", "--cases", "toy",
                             "--cells", "rnn", "--repeat", "2"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "OPENBLAS" not in result.stdout
