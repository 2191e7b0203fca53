"""Stable 64-bit hashing of int64 and Arrow string keys (``runnel.kernels.hashing``).

Baselines do the same job (a 64-bit hash per key) with pandas'
``util.hash_array`` and polars' ``Series.hash``; their hashes differ from
runnel's, the work does not.
"""

import numpy as np

from . import N, median_seconds, pairs, skip_unless_importable, words


class HashInt64:
    params = [["runnel", "pandas", "polars"]]
    param_names = ["impl"]

    def setup(self, impl):
        keys, _ = pairs()
        if impl == "runnel":
            from runnel.kernels import hash_int64
            self.fn = lambda: hash_int64(keys)
        elif impl == "pandas":
            import pandas as pd
            self.fn = lambda: pd.util.hash_array(keys, categorize=False)
        else:
            skip_unless_importable("polars")
            import polars as pl
            s = pl.Series(keys)
            self.fn = lambda: s.hash()
        self.fn()  # compile / warm

    def time_hash_int64(self, impl):
        self.fn()

    def track_records_per_s(self, impl):
        return N / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


class HashArrowStrings:
    """W1's 1M Zipf words (an Arrow string array)."""

    params = [["runnel", "pandas", "polars"]]
    param_names = ["impl"]

    def setup(self, impl):
        w = words()
        self.n = len(w)
        if impl == "runnel":
            from runnel.kernels import hash_arrow
            self.fn = lambda: hash_arrow(w)
        elif impl == "pandas":
            import pandas as pd
            objs = np.asarray(w.to_pylist(), dtype=object)
            self.fn = lambda: pd.util.hash_array(objs, categorize=False)
        else:
            skip_unless_importable("polars")
            import polars as pl
            s = pl.Series(w)
            self.fn = lambda: s.hash()
        self.fn()

    def time_hash_arrow(self, impl):
        self.fn()

    def track_records_per_s(self, impl):
        return self.n / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


class CombineHashes:
    """Hash of a two-column key: combine two hash arrays."""

    def setup(self):
        from runnel.kernels import combine_hashes, hash_float64, hash_int64
        keys, values = pairs()
        self.h1, self.h2 = hash_int64(keys), hash_float64(values)
        self.combine = combine_hashes
        combine_hashes(self.h1[:10], self.h2[:10])

    def time_combine_hashes(self):
        self.combine(self.h1, self.h2)
