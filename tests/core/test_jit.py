"""radiocloud.core.jit: without a thread-safe numba threading layer, parallel kernels are
compiled serial, so dask's threads can launch them at once (numba's workqueue layer aborts
the process when two threads launch parallel kernels together)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Blocks the OpenMP and TBB pools (as on a system without libgomp or libtbb), then launches a
# prange kernel from 4 threads at once, 20 times each, and checks every sum.
SCRIPT = """
import sys, importlib.abc

class NoPools(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in ("numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"):
            raise ImportError("blocked by the test")

if BLOCK:
    sys.meta_path.insert(0, NoPools())

from concurrent.futures import ThreadPoolExecutor
import numba
import numpy as np
from radiocloud.core import jit

@jit.njit(parallel=True)
def total(x):
    s = 0.0
    for i in numba.prange(x.shape[0]):
        s += x[i]
    return s

x = np.arange(100_000, dtype=np.float64)
with ThreadPoolExecutor(4) as pool:
    sums = list(pool.map(lambda _: total(x), range(80)))
assert all(s == x.sum() for s in sums), sums[:3]
print(jit.THREADING_LAYER, total.targetoptions.get("parallel"), jit.numba.config.CACHE_DIR)
"""


def _run(block: bool, tmp_path) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NUMBA_NUM_THREADS": "2"}
    script = tmp_path / "launch.py"  # numba caches functions of files only
    script.write_text(f"BLOCK = {block}\n" + textwrap.dedent(SCRIPT))
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_without_libgomp_or_tbb_parallel_kernels_run_serial_from_many_threads(tmp_path):
    layer, parallel, cache = _run(True, tmp_path)
    assert layer == "None"
    assert parallel == "False"
    assert cache.endswith("-serial")  # serial machine code is cached apart


def test_with_a_threadsafe_layer_kernels_stay_parallel(tmp_path):
    layer, parallel, cache = _run(False, tmp_path)
    assert layer in ("omp", "tbb")
    assert parallel == "True"
    assert not cache.endswith("-serial")
