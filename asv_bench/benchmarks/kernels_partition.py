"""Hash partitioning (``runnel.kernels.partition``): partition ids and the counting-sort scatter.

Baselines: ``hashes % n`` in NumPy, and a stable ``argsort`` + ``bincount``
(what one would write without a counting sort).
"""

import numpy as np

from . import N, median_seconds, pairs


def _hashes():
    from runnel.kernels import hash_int64
    keys, _ = pairs()
    return hash_int64(keys)


class PartitionIds:
    params = [["runnel", "numpy"], [2, 16]]
    param_names = ["impl", "partitions"]

    def setup(self, impl, partitions):
        h = _hashes()
        if impl == "runnel":
            from runnel.kernels import partition_ids
            self.fn = lambda: partition_ids(h, partitions)
        else:
            n = np.uint64(partitions)
            self.fn = lambda: (h % n).astype(np.int64)
        self.fn()

    def time_partition_ids(self, impl, partitions):
        self.fn()


class ScatterOrder:
    params = [["runnel", "numpy"], [2, 16]]
    param_names = ["impl", "partitions"]

    def setup(self, impl, partitions):
        from runnel.kernels import partition_ids
        ids = partition_ids(_hashes(), partitions)
        if impl == "runnel":
            from runnel.kernels import scatter_order
            self.fn = lambda: scatter_order(ids, partitions)
        else:
            def fn():
                order = np.argsort(ids, kind="stable")
                bounds = np.zeros(partitions + 1, dtype=np.int64)
                np.cumsum(np.bincount(ids, minlength=partitions), out=bounds[1:])
                return order, bounds
            self.fn = fn
        self.fn()

    def time_scatter_order(self, impl, partitions):
        self.fn()

    def track_records_per_s(self, impl, partitions):
        return N / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


class HashPartitionInt64:
    """The whole map side of a shuffle of W2 keys: hash, ids, scatter, take."""

    params = [["runnel", "pandas"]]
    param_names = ["impl"]

    def setup(self, impl):
        keys, values = pairs()
        n = 2
        if impl == "runnel":
            from runnel.kernels import hash_int64, partition_ids, scatter_order

            def fn():
                order, bounds = scatter_order(partition_ids(hash_int64(keys), n), n)
                return keys[order], values[order], bounds
        else:
            import pandas as pd

            def fn():
                ids = (pd.util.hash_array(keys, categorize=False) % np.uint64(n)).astype(np.int64)
                order = np.argsort(ids, kind="stable")
                return keys[order], values[order], np.bincount(ids, minlength=n)
        self.fn = fn
        fn()

    def time_hash_partition(self, impl):
        self.fn()
