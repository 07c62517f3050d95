"""The sdist is what a distributor builds from: it must hold every file the
repository tracks (the tests and their data, the benchmarks, the docs, the
license), so that ``pip install ".[test]" && python -m pytest`` passes in
an unpacked sdist."""
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from _optional import require

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {".gitignore"}


def tracked_files():
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if result.returncode != 0:
        return None
    return {name for name in result.stdout.decode().split("\0") if name}


def test_the_sdist_holds_every_tracked_file(tmp_path):
    tracked = tracked_files() if (ROOT / ".git").exists() else None
    if tracked is None:
        pytest.skip("not a git checkout (an unpacked sdist): no list of tracked files "
                    "to compare with")
    require("build", "building the sdist (pip install build)")
    # Built from a copy, so that the build's egg-info stays out of the checkout.
    source = tmp_path / "source"
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                             "-o", str(tmp_path / "dist"), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (archive,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        shipped = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = sorted(tracked - NOT_SHIPPED - shipped)
    assert not missing, f"tracked but not in the sdist (MANIFEST.in): {missing}"
