"""``fastrnn bench``: the time of one ``fastrnn.loss_and_grad`` call (forward
pass and BPTT) on the named cases of ``fastrnn.cli.cases``, for the NumPy
reference and the Numba kernel, and for PyTorch (float32 and float64) on the
same network and data when torch is importable.

Every time is the median of ``repeat`` calls after one warm-up call, so
compiling a kernel (or PyTorch's first-call set-up) is never counted. What
makes the times untrustworthy (a busy machine, calls that spread widely,
OpenBLAS pinned to a CPU type) is printed, and drawn on the --plot chart.
"""
import os
import platform
import sys

import numpy as np

import fastrnn
from fastrnn.cli._util import (MATPLOTLIB_MISSING, CLIError, SlowNote, check_writable,
                              format_seconds, matplotlib_available, time_calls)
from fastrnn.cli.cases import CASES, make_case
from fastrnn.functional import loss_and_grad

SERIES = {"reference": "NumPy reference", "kernel": "kernel", "torch32": "PyTorch float32",
          "torch64": "PyTorch float64"}
INPUT_NAMES = {"onehot": "one-hot inputs", "ids": "token ids", "dense": "dense random inputs"}


def cpu_model():
    """The CPU's model name: /proc/cpuinfo on Linux, else platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    name = line.split(":", 1)[1].strip()
                    if name:
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _import_torch():
    """(torch, None) or (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "not installed"
    except Exception as exc:            # a broken installation: say so, bench the rest
        return None, f"could not be imported ({type(exc).__name__}: {exc})"
    return torch, None


def load_average():
    """The load average over the last minute, or None where there is none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def blas_text():
    """NumPy's BLAS: as threadpoolctl sees it loaded (the kernel it picked for
    this CPU, its threads) when threadpoolctl is installed, else as NumPy was
    built."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
        blas.sort(key=lambda lib: "numpy" not in lib.get("filepath", ""))
        if blas:
            lib = blas[0]
            kernel = f", {lib['architecture']} kernels" if lib.get("architecture") else ""
            return (f"{lib.get('internal_api', 'unknown')} {lib.get('version') or ''}{kernel}, "
                    f"{lib.get('num_threads')} threads")
    try:
        build = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{build.get('name', 'unknown')} {build.get('version', '')} (as built)"
    except Exception:                      # older NumPy: no dicts
        return "unknown (pip install threadpoolctl to see it)"


# Set on some machines to pin OpenBLAS to a CPU type; a wrong or generic one
# makes NumPy's matrix products (the reference) up to ~2.7x slower.
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def environment_warnings(load):
    """What makes this run's times untrustworthy, in words."""
    warnings = []
    usable = usable_cores()
    if load is not None and load >= usable:
        warnings.append(f"busy machine: load average {load:.2f} on {usable} usable cores; "
                        "other work is running and the times are noisy")
    pinned = [f"{name}={os.environ[name]}" for name in OPENBLAS_VARIABLES if name in os.environ]
    if pinned:
        warnings.append(f"{', '.join(pinned)} set: OpenBLAS may not use this CPU's fastest "
                        "kernels, which slows the NumPy reference; unset it to compare fairly")
    return warnings


def machine_lines(torch, torch_problem):
    cores = os.cpu_count() or 1
    usable = usable_cores()
    core_text = f"{cores} cores" if usable == cores else f"{cores} cores ({usable} usable)"
    import numba
    load = load_average()
    if load is not None:
        core_text += f", load average {load:.2f}"
    lines = [f"Machine: {cpu_model()}, {core_text}; {platform.system()} {platform.machine()}",
             f"Software: Python {platform.python_version()}, numpy {np.__version__} "
             f"(BLAS: {blas_text()}), numba {numba.__version__}, fastrnn {fastrnn.__version__}, "
             "PyTorch " + (f"{torch.__version__} ({torch.get_num_threads()} threads)"
                           if torch is not None else torch_problem)]
    return lines


def torch_modules(torch, params, dtype):
    """The PyTorch recurrent module and nn.Linear that compute what
    ``params`` computes (any cell, layers, directions), in ``dtype``."""
    from fastrnn.convert import to_torch_state_dict
    from fastrnn._validation import check_params
    a = check_params(params).architecture
    rnn_state, linear_state = to_torch_state_dict(params)
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[a.cell]
    # In the final dtype before the weights are loaded: float64 weights
    # loaded into float32 modules would be rounded.
    rnn = module(a.n_inputs, a.n_hidden, num_layers=a.n_layers, bidirectional=a.bidirectional,
                 batch_first=True).to(dtype)
    linear = torch.nn.Linear(a.n_directions * a.n_hidden, a.n_outputs).to(dtype)
    rnn.load_state_dict({key: torch.from_numpy(value) for key, value in rnn_state.items()})
    linear.load_state_dict({key: torch.from_numpy(value) for key, value in linear_state.items()})
    return rnn, linear


def _torch_step(torch, cell, params, X, y, dtype):
    """A function running PyTorch's forward + backward of the same network
    on the same data as ``loss_and_grad(params, X, y)``, and its loss."""
    rnn, linear = torch_modules(torch, params, dtype)
    k, m = params["W_x"].shape[1], params["W_y"].shape[0]
    X = np.asarray(X)
    if X.dtype.kind in "iu":                 # token ids: torch's RNNs take the one-hot vectors
        X = np.eye(k)[X]
    if X.ndim == 2:                          # one sequence: a batch of one
        X = X[None]
    inputs = torch.from_numpy(np.ascontiguousarray(X)).to(dtype)
    targets = torch.from_numpy(np.asarray(y).reshape(-1)).long()
    batch = inputs.shape[0]
    parameters = list(rnn.parameters()) + list(linear.parameters())

    def step():
        for p in parameters:
            p.grad = None
        hidden, _ = rnn(inputs)
        logits = linear(hidden).reshape(-1, m)
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / batch
        loss.backward()
        return loss.detach().item()

    return step


def _cell_text(timing):
    return format_seconds(timing.median) if timing is not None else "-"


def run(args, out):
    if args.plot is not None:
        check_writable(args.plot, "--plot")
    plot_possible = args.plot is None or matplotlib_available()
    torch, torch_problem = _import_torch()

    out(f"fastrnn bench: one call of fastrnn.loss_and_grad (forward pass and backpropagation "
        f"through time), median of {args.repeat} calls after a warm-up call (compilation is "
        f"not counted).")
    header_lines = machine_lines(torch, torch_problem)
    for line in header_lines:
        out(line)
    loads = [load_average()]
    if torch is not None:
        out("PyTorch: nn.RNN(tanh)/nn.LSTM/nn.GRU + nn.Linear + cross_entropy, forward and backward, "
            "the same weights and data (token ids as one-hot vectors), default threads.")
    if not plot_possible:
        out(f"Note: {MATPLOTLIB_MISSING}. The table is printed anyway.")
    out("ratio = reference time / kernel time.")

    header = (f"  {'cell':<5} {'reference (numpy)':>17}  {'kernel (numba)':>14}  {'ratio':>7}  "
              f"{'torch float32':>13}  {'torch float64':>13}")
    rows = []
    for name in args.cases:
        case = CASES[name]
        out("")
        out(f"{name}: {case.about} (k={case.k}, d={case.d}, T={case.T}, B={case.B}, "
            f"{INPUT_NAMES.get(case.inputs, case.inputs)})")
        out(header)
        for cell in args.cells:
            params, X, y = make_case(name, cell=cell)
            row = {"case": name, "cell": cell}
            row["reference"] = time_calls(
                lambda: loss_and_grad(params, X, y, backend="numpy"), args.repeat)
            with SlowNote("  (compiling the kernels for this input type: the first run only)",
                          out, after=2.0):
                loss_and_grad(params, X, y, backend="numba")
            row["kernel"] = time_calls(
                lambda: loss_and_grad(params, X, y, backend="numba"), args.repeat)
            row["torch32"] = row["torch64"] = None
            if torch is not None:
                for key, dtype in (("torch32", torch.float32), ("torch64", torch.float64)):
                    step = _torch_step(torch, cell, params, X, y, dtype)
                    row[key] = time_calls(step, args.repeat)
                    if key == "torch64":
                        _check_same_loss(step(), loss_and_grad(params, X, y)[0], name, cell, out)
            rows.append(row)
            loads.append(load_average())
            ratio = row["reference"].median / row["kernel"].median
            out(f"  {cell:<5} {_cell_text(row['reference']):>17}  {_cell_text(row['kernel']):>14}"
                f"  {ratio:>6.1f}x  {_cell_text(row['torch32']):>13}"
                f"  {_cell_text(row['torch64']):>13}")
    if torch is None:
        out("")
        out(f"PyTorch: {torch_problem} (pip install torch to compare with it).")
    warnings = environment_warnings(max((x for x in loads if x is not None), default=None))
    noisy = [f"{row['case']}/{row['cell']} {SERIES[key]}" for row in rows for key in SERIES
             if row[key] is not None and row[key].noisy]
    if noisy:
        warnings.append("noisy times (the middle half of the calls more than 25% apart): "
                        + ", ".join(noisy))
    for warning in warnings:
        out("")
        out(f"Warning: {warning}.")

    if args.plot is not None:
        if not plot_possible:
            raise CLIError(MATPLOTLIB_MISSING)
        from fastrnn.cli.plot import plot_bench
        plot_bench(args.plot, rows, header_lines, warnings)
        out("")
        out(f"Saved the chart to {args.plot}")
    return 0


def _check_same_loss(torch_loss, loss, name, cell, out):
    """The comparison is only fair if PyTorch computes the same thing."""
    if abs(torch_loss - loss) > 1e-9 * max(1.0, abs(loss)):
        print(f"fastrnn bench: warning: PyTorch's loss on {name}/{cell} is {torch_loss!r}, "
              f"fastrnn's {loss!r}", file=sys.stderr)
