"""None and NaN keys: one key each, whatever the column type, master or partition count.

The rule (``runnel.keyed``, "None and NaN keys"): every ``None`` key is one
key and hashes to ``kernels.NULL_HASH`` in every column type; every float NaN
key is one key (all NaNs equal, as Spark SQL groups them and pandas'
``groupby(dropna=False)`` does), in the kernels, the Python-updater state,
windows and joins alike.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from runnel import kernels as K, updaters
from runnel.batch import infer_column, object_array
from runnel.keyed import canonical_key, hash_column

from runnel.testing import assert_batches_equal

pytestmark = [pytest.mark.filterwarnings("ignore:.*will not survive a restart:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::runnel.PythonFallbackWarning")]
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAN = float("nan")


def _add(a, b):
    return a + b


def _py_sum(values, state):
    return sum(values) + (state or 0)


# --- hashing ---------------------------------------------------------------------------

def test_none_key_hashes_alike_in_every_column_type():
    cols = [object_array([None, None]), infer_column([None, "bob"]), infer_column([None, b"x"]),
            object_array([None, 1]), object_array([None, 1.5]), object_array([None, (1, 2)])]
    assert {int(hash_column(c)[0]) for c in cols} == {int(K.NULL_HASH)}


def test_nan_key_hashes_alike_in_every_column_type():
    cols = [np.array([NAN, 1.0]), object_array([float("nan"), "a"]), object_array([np.float64("nan"), 1])]
    assert {int(hash_column(c)[0]) for c in cols} == {int(K.NAN_HASH)}


def test_canonical_key_makes_every_nan_one_dict_key():
    d = {}
    for k in [float("nan"), float("nan"), np.float64("nan"), (1, float("nan")), (1, float("nan")), None, "a"]:
        d[canonical_key(k)] = d.get(canonical_key(k), 0) + 1
    assert sorted(d.values()) == [1, 1, 2, 3]


# --- None keys on every master -----------------------------------------------------------

# Two partitions: [(None, 1)] and [("bob", 1), (None, 2)]. ``parallelize`` slices one batch, so
# both start as Arrow string columns; a map infers each partition's columns anew: an all-None
# object key column in the first, an Arrow string column with a null in the second.
NONE_SPLIT = [(None, 1), ("bob", 1), (None, 2)]


def _retyped(s):
    return s.map(lambda kv: kv)


def test_reduce_by_key_gives_none_key_once(run):
    out = run(lambda s: _retyped(s).reduce_by_key(_add, 2), [NONE_SPLIT], num_partitions=2)
    assert_batches_equal(out, [[("bob", 1), (None, 3)]])


def test_state_keeps_none_key_once(run):
    later = [(None, 5), ("bob", 1)]
    for fn in (_py_sum, updaters.running_sum()):
        out = run(lambda s: _retyped(s).update_state_by_key(fn, 2), [NONE_SPLIT, later], num_partitions=2)
        assert_batches_equal(out, [[("bob", 1), (None, 3)], [("bob", 2), (None, 8)]])


def test_window_keeps_none_key_once(run):
    out = run(lambda s: _retyped(s).reduce_by_key_and_window(_add, operator.sub, 5, 1, 2),
              [NONE_SPLIT, [(None, 1)]], num_partitions=2)
    assert_batches_equal(out, [[("bob", 1), (None, 3)], [("bob", 1), (None, 4)]])


def test_join_matches_none_keys_across_column_types(run):
    out = run(lambda a, b: a.join(b, 2), [[(None, 1)]], [[(None, "x"), ("bob", "y")]], num_partitions=1)
    assert_batches_equal(out, [[(None, (1, "x"))]])


# --- NaN keys: one key -------------------------------------------------------------------

def test_reduce_by_key_merges_nan_keys_in_mixed_columns(run):
    out = run(lambda s: s.reduce_by_key(_add, 2), [[(NAN, 1), ("a", 1), (float("nan"), 2), (NAN, 4)]],
              num_partitions=2)
    assert_batches_equal(out, [[(NAN, 7), ("a", 1)]])


def test_state_keeps_nan_key_once_with_every_updater(run):
    batches = [[(float("nan"), 1)], [(float("nan"), 2)], [(float("nan"), 4), ("a", 1)]]
    for fn in (_py_sum, updaters.running_sum()):
        out = run(lambda s: s.update_state_by_key(fn), batches)
        assert_batches_equal(out, [[(NAN, 1)], [(NAN, 3)], [(NAN, 7), ("a", 1)]])


def test_map_with_state_keeps_nan_key_once(run):
    from runnel import StateSpec

    def track(key, value, state):
        total = (state.get_option() or 0) + value
        state.update(total)
        return (key, total)

    out = run(lambda s: s.map_with_state(StateSpec.function(track)),
              [[(float("nan"), 1)], [(float("nan"), 2), ("a", 1)]])
    assert_batches_equal(out, [[(NAN, 1)], [(NAN, 3), ("a", 1)]])


def test_window_python_path_keeps_nan_key_once(run):
    out = run(lambda s: s.map_values(lambda v: [v]).reduce_by_key_and_window(_add, operator.sub, 5, 1),
              [[(float("nan"), 1), ("a", 2)], [(float("nan"), 3)]])
    assert_batches_equal(out, [[(NAN, [1]), ("a", [2])], [(NAN, [1, 3]), ("a", [2])]])
    # lists have no subtraction: the inverse runs on the Python path with dicts keyed by NaN


def test_join_and_cogroup_match_nan_keys(run):
    left, right = [[(float("nan"), 1), ("a", 2)]], [[(float("nan"), "x")]]
    out = run(lambda a, b: a.join(b), left, right)
    assert_batches_equal(out, [[(NAN, (1, "x"))]])
    out = run(lambda a, b: a.cogroup(b).map_values(lambda vw: (list(vw[0]), list(vw[1]))), left, right)
    assert_batches_equal(out, [[(NAN, ([1], ["x"])), ("a", ([2], []))]])


# --- property: independent of master and partition count ------------------------------------

KEYS = st.one_of(st.none(), st.sampled_from(["", "a", "bob"]), st.integers(-3, 3), st.just(NAN))
BATCHES = st.lists(st.lists(st.tuples(KEYS, st.integers(0, 9)), max_size=8), min_size=1, max_size=3)


def _reference_reduce(batch):
    out: dict = {}
    for k, v in batch:
        k = canonical_key(k)
        out[k] = out.get(k, 0) + v
    return list(out.items())


def _reference_state(batches):
    state: dict = {}
    out = []
    for b in batches:
        for k, v in b:
            k = canonical_key(k)
            state[k] = state.get(k, 0) + v
        out.append(list(state.items()))
    return out


@PROPS
@given(batches=BATCHES, parts=st.integers(1, 3), reduce_parts=st.integers(1, 3))
def test_reduce_by_key_with_none_nan_keys_is_independent_of_partitioning(run, batches, parts, reduce_parts):
    out = run(lambda s: _retyped(s).reduce_by_key(_add, reduce_parts), batches, num_partitions=parts)
    assert_batches_equal(out, [_reference_reduce(b) for b in batches])


@PROPS
@given(batches=BATCHES, parts=st.integers(1, 3), state_parts=st.integers(1, 3))
def test_state_with_none_nan_keys_is_independent_of_partitioning(run, batches, parts, state_parts):
    expected = _reference_state(batches)
    for fn in (_py_sum, updaters.running_sum()):
        out = run(lambda s: _retyped(s).update_state_by_key(fn, state_parts), batches, num_partitions=parts)
        assert_batches_equal(out, expected)


@PROPS
@given(batches=BATCHES, parts=st.integers(1, 3))
def test_window_with_none_nan_keys_is_independent_of_partitioning(run, batches, parts):
    out = run(lambda s: _retyped(s).reduce_by_key_and_window(_add, operator.sub, 5, 1, 2), batches, num_partitions=parts)
    expected = _reference_state(batches)  # a 5-slide window over <= 3 batches holds them all
    assert_batches_equal(out, expected)
