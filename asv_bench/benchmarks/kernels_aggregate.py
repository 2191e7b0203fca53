"""Hash aggregation (``runnel.kernels.aggregate``): factorize + reduce, and a cold compile.

Baselines: ``pandas.factorize``, ``pyarrow.compute.dictionary_encode``,
``np.bincount`` with weights, and pandas / polars group-by sums.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

from . import N, median_seconds, pairs, skip_unless_importable, words


class FactorizeInt64:
    """W2 keys: ``dense`` as drawn ([0, 100k): direct addressing), ``sparse`` spread over int64 (hash table)."""

    params = [["runnel", "pandas"], ["dense", "sparse"]]
    param_names = ["impl", "keys"]

    def setup(self, impl, keys):
        k, _ = pairs()
        if keys == "sparse":
            k = k * np.int64(1_000_003_000_037)  # same groups, far beyond any dense table
        if impl == "runnel":
            from runnel.kernels import factorize_int64
            self.fn = lambda: factorize_int64(k)
        else:
            import pandas as pd
            self.fn = lambda: pd.factorize(k, sort=False)
        self.fn()

    def time_factorize_int64(self, impl, keys):
        self.fn()


class FactorizeArrowStrings:
    """W1's 1M Zipf words."""

    params = [["runnel", "pandas", "pyarrow"]]
    param_names = ["impl"]

    def setup(self, impl):
        w = words()
        self.n = len(w)
        if impl == "runnel":
            from runnel.kernels import factorize_arrow
            self.fn = lambda: factorize_arrow(w)
        elif impl == "pandas":
            import pandas as pd
            s = pd.Series(w.to_pandas())
            self.fn = lambda: pd.factorize(s, sort=False)
        else:
            import pyarrow.compute as pc
            self.fn = lambda: pc.dictionary_encode(w)
        self.fn()

    def time_factorize_arrow(self, impl):
        self.fn()

    def track_records_per_s(self, impl):
        return self.n / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


class ReduceCodes:
    params = [["runnel", "numpy"], ["sum", "min"]]
    param_names = ["impl", "op"]

    def setup(self, impl, op):
        from runnel.kernels import factorize_int64, reduce_codes
        k, v = pairs()
        codes, first = factorize_int64(k)
        ng = len(first)
        if impl == "runnel":
            self.fn = lambda: reduce_codes(codes, ng, v, op)
        elif op == "sum":
            self.fn = lambda: np.bincount(codes, weights=v, minlength=ng)
        else:
            def fn():
                out = np.full(ng, np.inf)
                np.minimum.at(out, codes, v)
                return out
            self.fn = fn
        self.fn()

    def time_reduce_codes(self, impl, op):
        self.fn()


class GroupBySum:
    """A whole per-batch reduceByKey(add) of W2 (1M pairs, 100k keys) without the engine."""

    params = [["runnel", "runnel-dense", "pandas", "polars"]]
    param_names = ["impl"]

    def setup(self, impl):
        k, v = pairs()
        if impl == "runnel-dense":  # the fused one-pass kernel the engine uses for small key ranges
            from runnel.kernels import reduce_int64_dense
            self.fn = lambda: reduce_int64_dense(k, v, "sum")
        elif impl == "runnel":
            from runnel.kernels import factorize_int64, reduce_codes

            def fn():
                codes, first = factorize_int64(k)
                return k[first], reduce_codes(codes, len(first), v, "sum")
            self.fn = fn
        elif impl == "pandas":
            import pandas as pd
            df = pd.DataFrame({"key": k, "value": v})
            self.fn = lambda: df.groupby("key", sort=False)["value"].sum()
        else:
            skip_unless_importable("polars")
            import polars as pl
            df = pl.DataFrame({"key": k, "value": v})
            self.fn = lambda: df.group_by("key").agg(pl.col("value").sum())
        self.fn()

    def time_groupby_sum(self, impl):
        self.fn()

    def track_records_per_s(self, impl):
        return N / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


_COLD = """
import time
t0 = time.perf_counter()
import numpy as np
from runnel.kernels import factorize_int64, reduce_codes
codes, first = factorize_int64(np.arange(10, dtype=np.int64) % 3)
reduce_codes(codes, len(first), np.ones(10), "sum")
print(time.perf_counter() - t0)
"""


class ColdCompile:
    """What a first run pays on an empty Numba cache: one groupby-sum's kernels, in a fresh interpreter."""

    number = 1
    repeat = (1, 3, 120.0)
    warmup_time = 0
    processes = 1
    timeout = 600

    def _run(self, code):
        with tempfile.TemporaryDirectory(prefix="runnel-asv-nc-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])

    def time_cold_compile_groupby_sum(self):
        self._run(_COLD)

    def track_cold_warm_all_kernels_s(self):
        """Seconds for ``runnel.kernels.warm()`` on an empty cache (every kernel, every signature)."""
        return self._run("import time\nt0 = time.perf_counter()\nfrom runnel.kernels import warm\nwarm()\n"
                         "print(time.perf_counter() - t0)")

    track_cold_warm_all_kernels_s.unit = "seconds"
    track_cold_warm_all_kernels_s.timeout = 900
