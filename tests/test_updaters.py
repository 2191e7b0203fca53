"""runnel.updaters: the built-in updaters as plain functions, StateSpec and State."""

from __future__ import annotations

import pytest

from runnel import updaters as U
from runnel.updaters import State, StateSpec


def test_updaters_are_the_pyspark_functions_they_stand_for():
    assert U.running_sum()([1, 2], 10) == 13
    assert U.running_sum()([], None) is None
    assert U.running_count()(["x", "y"], 3) == 5
    assert U.running_min()([4, 2], 3) == 2
    assert U.running_max()([4, 2], None) == 4
    assert U.last_value()([4, 2], 9) == 2
    assert U.running_mean()([2, 4], None) == (6, 2)
    assert repr(U.running_sum(ttl=5)) == "updaters.running_sum(ttl=5)"


@pytest.mark.parametrize("ttl", [0, -1, "5", True])
def test_ttl_must_be_positive_seconds(ttl):
    with pytest.raises(ValueError, match="ttl"):
        U.running_sum(ttl=ttl)


def test_ttl_in_ms():
    assert U.running_sum(ttl=2.5).ttl_ms == 2500 and U.running_sum().ttl_ms == 0


def test_state_spec_builder_and_validation():
    spec = StateSpec.function(len).num_partitions(3).timeout(2).initial_state([("a", 1)])
    assert (spec.fn, spec.partitions, spec.timeout_s, spec.initial) == (len, 3, 2, [("a", 1)])
    with pytest.raises(TypeError):
        StateSpec.function(3)
    with pytest.raises(ValueError):
        spec.timeout(0)
    with pytest.raises(ValueError):
        spec.num_partitions(0)


def test_state_handle():
    s = State()
    assert not s.exists() and s.get_option() is None
    with pytest.raises(KeyError, match="not set"):
        s.get()
    s.update(3)
    assert s.exists() and s.get() == 3 and not s.isTimingOut()
    s.remove()
    assert not s.exists()
    t = State(True, 5, timing_out=True)
    assert t.is_timing_out() and t.get() == 5
    with pytest.raises(RuntimeError, match="timing out"):
        t.update(1)
