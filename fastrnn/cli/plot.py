"""The PNGs of ``fastrnn train --plot``, ``fastrnn bench --plot`` and ``fastrnn why --plot``.

matplotlib is optional (``pip install "fastrnn[plot]"``); callers check
that it is importable first. The figures are drawn without pyplot (no
window, no global state), with the Agg renderer.
"""
import numpy as np

from fastrnn.cli._util import CLIError


def _save(fig, path):
    try:
        fig.savefig(path, dpi=120)
    except (ValueError, OSError) as exc:
        raise CLIError(f"--plot {path}: cannot write the figure ({exc})") from None


def plot_loss_curve(path, loss_per_char, title):
    """Loss per character against the epoch."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(loss_per_char) + 1)
    ax.plot(epochs, loss_per_char, color="tab:blue", linewidth=1.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per character (nats)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(epochs) == 1:
        ax.plot(epochs, loss_per_char, "o", color="tab:blue")
    _save(fig, path)


def plot_bench(path, rows, machine):
    """Grouped bars, one group per case and cell: how many times faster the
    kernel is than the NumPy reference and than PyTorch float32/float64.

    rows: dicts with keys case, cell, reference, kernel, torch32, torch64
    (seconds; the torch ones None when not measured)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
    series = [("reference", "NumPy reference", "tab:blue"),
              ("torch32", "PyTorch float32", "tab:orange"),
              ("torch64", "PyTorch float64", "tab:red")]
    series = [s for s in series if any(row[s[0]] is not None for row in rows)]
    labels = [f"{row['case']}\n{row['cell']}" for row in rows]
    fig = Figure(figsize=(max(5, 1.1 * len(rows) + 2), 4.5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    for i, (key, label, color) in enumerate(series):
        ratios = [row[key] / row["kernel"] if row[key] is not None else np.nan for row in rows]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, ratios, width, label=label,
                      color=color)
        ax.bar_label(bars, labels=[f"{r:.1f}" if np.isfinite(r) else "" for r in ratios],
                     fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    # Plain numbers on the log axis ("6", not "6×10⁰"), and headroom above
    # the tallest bar for its label.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, 0.8), high * 1.5)
    ax.set_xticks(x, labels)
    ax.set_ylabel("time / fastrnn kernel time  (>1: the kernel is faster)")
    ax.set_title(f"fastrnn.loss_and_grad, forward + backward\n{machine}", fontsize=9)
    fig.legend(fontsize=8, loc="outside lower center", ncols=len(series))
    ax.grid(True, axis="y", alpha=0.3, which="both")
    _save(fig, path)


def plot_gradient_norms(path, norms, n_hidden, steps):
    """``fastrnn why --plot``: ‖∂L_T/∂h_(T−k)‖ / ‖∂L_T/∂h_T‖ against k, log scale."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, values in norms.items():
        ks = sorted(values)
        ax.semilogy(ks, [values[k] / values[0] for k in ks], marker="o", label=label)
    ax.set_xlabel("k: steps back from the last step T")
    ax.set_ylabel("‖∂L_T/∂h_(T−k)‖ / ‖∂L_T/∂h_T‖")
    ax.set_title(f"The notes' 'Why?': gradients through time, {n_hidden} hidden units, "
                 f"at initialisation", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    _save(fig, path)
