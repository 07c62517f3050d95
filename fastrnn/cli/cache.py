"""``fastrnn cache``: where Numba keeps fastrnn's compiled kernels, how to
compile them all ahead of time, and how to remove them.

Numba writes compiled kernels beside their sources
(``site-packages/fastrnn/kernels/__pycache__``), or below
``NUMBA_CACHE_DIR`` when that is set. ``pip uninstall fastrnn`` does not know
about those files; ``fastrnn cache --clear`` removes them first.

``fastrnn cache --compile`` compiles every kernel for every input type the
API can produce (each cell, token ids and float inputs, every kind of
target), so that a Docker image or a cluster's shared ``NUMBA_CACHE_DIR``
starts fast in every process: the first real call then only loads them.
"""
import functools
import time
from pathlib import Path

import numpy as np

from fastrnn._cells import CELL_NAMES


def cache_directory():
    from fastrnn.kernels.network import loss_and_grad
    try:
        return Path(loss_and_grad._cache.cache_path)
    except AttributeError:
        return None


def _kernel_files(directory):
    stems = {path.stem for path in (Path(__file__).parent.parent / "kernels").glob("*.py")}
    return [path for path in directory.glob("*.nb[ic]") if path.name.split(".")[0] in stems] \
        if directory.is_dir() else []


def compile_all(cells=CELL_NAMES, dtypes=("float64",), out=print):
    """Run every kernel once on tiny inputs of every type: fit (token ids
    and float inputs; class ids, distributions and real targets; per step
    and per sequence; on one core and on threads), and predict. (float64:
    ``dtypes``: the precisions to compile for (float64, float32).)"""
    import fastrnn
    from fastrnn import _parallel
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, (2, 4))
    dense = rng.normal(size=(2, 4, 3))
    targets = {"class ids": rng.integers(0, 3, (2, 4)),
               "distributions": rng.dirichlet(np.ones(3), (2, 4))}
    for cell, dtype in ((cell, dtype) for cell in cells for dtype in dtypes):
        start = time.perf_counter()
        fastrnn_model = functools.partial(fastrnn.FastRNN, dtype=dtype)
        regressor = functools.partial(fastrnn.FastRNNRegressor, dtype=dtype)
        for X in (ids, dense):
            models = [fastrnn_model(n_hidden=2, cell=cell, epochs=1).fit(X, y)
                      for y in targets.values()]
            models.append(fastrnn_model(n_hidden=2, cell=cell, epochs=1)
                          .fit(X, targets["class ids"][:, 0]))
            models += [regressor(n_hidden=2, cell=cell, epochs=1).fit(X, y)
                       for y in (dense[:, :, 0], dense[:, 0, :2])]
            for model in models:
                model.predict(X)
            # Large updates train on threads, one Python step per update
            # (fastrnn._train_threads), which calls the kernels on their own.
            saved = _parallel.MIN_PARALLEL_FIT_WORK
            _parallel.MIN_PARALLEL_FIT_WORK = 0
            try:
                for y in targets.values():
                    fastrnn_model(n_hidden=2, cell=cell, epochs=1, batch_size=2).fit(X, y)
            finally:
                _parallel.MIN_PARALLEL_FIT_WORK = saved
        out(f"  {cell:<5} {dtype}: compiled in {time.perf_counter() - start:.1f} s")


def run(args, out):
    directory = cache_directory()
    if directory is None:
        out("This Numba does not say where it caches kernels.")
        return 1
    if args.compile:
        out(f"Compiling every kernel into {directory} (several minutes on 2 cores)...")
        start = time.perf_counter()
        compile_all(dtypes=args.dtypes, out=out)
        out(f"Done in {time.perf_counter() - start:.0f} s.")
    if args.clear:
        files = _kernel_files(directory)
        for path in files:
            path.unlink(missing_ok=True)
        (directory / "fastrnn-sources.sha256").unlink(missing_ok=True)
        out(f"Removed {len(files)} cached kernel files from {directory}.")
        return 0
    files = _kernel_files(directory)
    size = sum(path.stat().st_size for path in files)
    out(f"fastrnn's compiled kernels: {directory}")
    out(f"  {len(files)} files, {size / 2**20:.1f} MiB. Remove them with `fastrnn cache --clear` "
        f"(before `pip uninstall fastrnn`, which does not know about them).")
    return 0
