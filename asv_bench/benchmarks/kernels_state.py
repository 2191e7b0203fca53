"""Keyed state and window kernels (``runnel.kernels.state``, ``runnel.kernels.window``) on W3/W4 shapes.

* ``StateMerge`` — one W4 batch (1M pairs, keys in [0, 1M)) merged into a
  state of ~1M keys: runnel's path (the rows grouped by bucket of the key
  range, ``split_rows``, then folded into the table bucket by bucket,
  ``merge_dense``) against reducing them first (``sorted_reduce``), the hash
  path (factorize + reduce + factorize state and partial keys +
  ``merge_state`` + take) and pandas'
  ``state.add(batch.groupby(key).sum(), fill_value=0)``.
* ``WindowUpdate`` — W3's slide (old window, leaving and entering partials of
  100k keys): runnel's merge of tables sorted by key
  (``window_update_sorted``) against direct addressing
  (``window_update_dense``), the code kernel with its factorize, and pandas'
  ``old.sub(leaving).add(entering)``.
"""

import numpy as np

from . import N, median_seconds


def _w4(t):
    from runnel.bench.workloads import make_batches
    b = make_batches("W4", 1, n=N, first_t=t)[0]
    return b["key"], b["value"]


class StateMerge:
    params = [["runnel", "runnel-reduce", "runnel-hash", "pandas"]]
    param_names = ["impl"]

    def setup(self, impl):
        from runnel.kernels import factorize_int64, reduce_codes
        from runnel.kernels.state import match_positions, merge_dense, merge_state, sorted_reduce, split_rows
        keys, vals = _w4(1)
        st_k = np.arange(N, dtype=np.int64)
        st_v = np.random.default_rng(0).random(N)
        if impl == "runnel":
            def fn():
                [(k, v)] = split_rows(keys, vals, 1)
                return merge_dense((st_k, st_v, None, None), (k, v, None), "sum")
        elif impl == "runnel-reduce":
            def fn():
                k, v, _ = sorted_reduce(keys, vals, "sum")
                return merge_dense((st_k, st_v, None, None), (k, v, None), "sum")
        elif impl == "runnel-hash":
            def fn():
                codes, first = factorize_int64(keys)
                pk, pv = keys[first], reduce_codes(codes, len(first), vals, "sum")
                allk = np.concatenate([st_k, pk])
                c, _ = factorize_int64(allk)
                pos = match_positions(c, N)
                out, _, keep = merge_state(pos, st_v, np.zeros(N, np.int64), pv, "sum")
                return allk[np.concatenate([np.arange(N), N + np.flatnonzero(pos < 0)])][keep], out[keep]
        else:
            import pandas as pd
            state = pd.Series(st_v, index=st_k)
            df = pd.DataFrame({"key": keys, "value": vals})
            def fn():
                return state.add(df.groupby("key").value.sum(), fill_value=0)
        self.fn = fn
        fn()

    def time_state_merge(self, impl):
        self.fn()

    def track_records_per_s(self, impl):
        return N / median_seconds(self.fn)

    track_records_per_s.unit = "records/s"


class WindowUpdate:
    params = [["runnel", "runnel-dense", "runnel-codes", "pandas"]]
    param_names = ["impl"]

    def setup(self, impl):
        import operator

        from runnel import keyed
        from runnel.batch import Batch
        from runnel.functions import Reducer
        from runnel.kernels.window import window_update, window_update_dense, window_update_sorted
        from . import pairs
        red = Reducer(operator.add, op="sum")
        segs = []
        for t in (1, 2, 3):
            k, v = pairs(t=t)
            b = Batch({"key": k, "value": v}, ("key", "value"))
            # the engine's partials are sorted by key (sort_keys); the other paths take any order
            b = keyed.merge_reduce([b], red, sort_keys=True) if impl == "runnel" else keyed.reduce_pairs(b, red)
            segs.append((b["key"], b["value"]))
        if impl == "runnel":
            self.fn = lambda: window_update_sorted([k for k, _ in segs], [v for _, v in segs])
        elif impl == "runnel-dense":
            self.fn = lambda: window_update_dense([k for k, _ in segs], [v for _, v in segs])
        elif impl == "runnel-codes":
            def fn():
                keys = np.concatenate([k for k, _ in segs])
                codes, first = keyed.factorize(keys)
                out, present = window_update(codes, len(first), np.concatenate([v for _, v in segs]),
                                             (len(segs[0][0]), len(segs[1][0])))
                return keys[first[present]], out[present]
            self.fn = fn
        else:
            import pandas as pd
            old, leave, enter = (pd.Series(v, index=k) for k, v in segs)
            self.fn = lambda: old.sub(leave, fill_value=0).add(enter, fill_value=0)
        self.fn()

    def time_window_update(self, impl):
        self.fn()
