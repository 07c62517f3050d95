"""The PNGs of ``fastrnn train --plot``, ``fastrnn bench --plot`` and ``fastrnn why --plot``.

matplotlib is optional (``pip install "fastrnn[plot]"``); callers check
that it is importable first. The figures are drawn without pyplot (no
window, no global state), with the Agg renderer.
"""
import textwrap

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


def plot_bench(path, rows, header_lines, warnings):
    """Grouped bars, one group per case and cell: how many times faster the
    kernel is than the NumPy reference and than PyTorch float32/float64.

    rows: dicts with keys case, cell, reference, kernel, torch32, torch64
    (Timings; the torch ones None when not measured). Each bar's whisker
    spans the ratio between the calls' quartiles, a bar whose times were
    noisy is hatched, and ``warnings`` (a busy machine, OpenBLAS pinned) are
    written in red over the chart, so that an outlier never looks like a
    result. ``header_lines`` (machine and versions) go under the title."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter
    from fastrnn.cli.bench import SERIES
    colours = {"reference": "tab:blue", "torch32": "tab:orange", "torch64": "tab:red"}
    series = [(key, SERIES[key], colour) for key, colour in colours.items()
              if any(row[key] is not None for row in rows)]
    labels = [f"{row['case']}\n{row['cell']}" for row in rows]
    fig_width = max(8.0, 1.1 * len(rows) + 2)
    fig = Figure(figsize=(fig_width, 5.5), layout="constrained")
    # Characters of 7-point text that fit across the axes (about 4 points
    # each; the axes take ~80% of the figure's width).
    line_width = int(0.8 * fig_width * 72 / 4.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    for i, (key, label, color) in enumerate(series):
        ratios, low, high, noisy = [], [], [], []
        for row in rows:
            other, kernel = row[key], row["kernel"]
            if other is None:
                ratios.append(np.nan), low.append(0.0), high.append(0.0), noisy.append(False)
                continue
            ratio = other.median / kernel.median
            ratios.append(ratio)
            low.append(max(ratio - other.low / kernel.high, 0.0))
            high.append(max(other.high / kernel.low - ratio, 0.0))
            noisy.append(other.noisy or kernel.noisy)
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, ratios, width, label=label,
                      color=color, yerr=[low, high], capsize=2,
                      error_kw={"elinewidth": 0.8, "ecolor": "black"})
        for bar, is_noisy in zip(bars, noisy):
            if is_noisy:
                bar.set_hatch("///")
                bar.set_alpha(0.55)
        ax.bar_label(bars, labels=[f"{r:.1f}" if np.isfinite(r) else "" for r in ratios],
                     fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    # Plain numbers on the log axis ("6", not "6×10⁰"), and headroom above
    # the tallest bar for its label.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    low_limit, high_limit = ax.get_ylim()
    ax.set_ylim(min(low_limit, 0.8), high_limit * 1.5)
    ax.set_xticks(x, labels)
    ax.set_ylabel("time / fastrnn kernel time  (>1: the kernel is faster)")
    title = ["fastrnn.loss_and_grad, forward + backward: the median of the calls, whiskers "
             "from quartile to quartile, hatched if noisy"] + header_lines
    ax.set_title("\n".join(textwrap.fill(line, line_width) for line in title), fontsize=7)
    if warnings:
        fig.suptitle("\n".join(textwrap.fill("Warning: " + w, line_width) for w in warnings),
                     fontsize=7, color="darkred", ha="left", x=0.02, multialignment="left")
    fig.legend(fontsize=8, loc="outside lower center", ncols=len(series))
    ax.grid(True, axis="y", alpha=0.3, which="both")
    _save(fig, path)
    return fig


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
