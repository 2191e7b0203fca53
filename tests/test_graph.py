"""Stream names are stable and deterministic: checkpointed state will be keyed by them."""

import pytest

from runnel import ManualClock, StreamingContext


@pytest.fixture
def graph_ssc():
    ssc = StreamingContext("local", 1, clock=ManualClock())
    yield ssc
    ssc.stop()


def test_default_names_follow_definition_order(graph_ssc):
    src = graph_ssc.queue_stream([[1]])
    doubled = src.map(lambda x: 2 * x)
    counts = doubled.count_by_value()
    assert [src.name, doubled.name, counts.name] == ["queue_stream-1", "map-2", "count_by_value-3"]


def test_the_same_program_gets_the_same_names_in_a_new_context():
    def build(ssc):
        s = ssc.queue_stream([[("a", 1)]])
        return [s.name, s.reduce_by_key(lambda a, b: a + b).name, s.group_by_key().name]

    names = []
    for _ in range(2):
        ssc = StreamingContext("local", 1, clock=ManualClock())
        names.append(build(ssc))
        ssc.stop()
    assert names[0] == names[1] == ["queue_stream-1", "reduce_by_key-2", "group_by_key-3"]


def test_a_user_name_replaces_the_default_and_must_be_unique(graph_ssc):
    a = graph_ssc.queue_stream([[1]]).named("clicks")
    assert a.name == "clicks"
    b = graph_ssc.queue_stream([[2]])
    with pytest.raises(ValueError, match="clicks"):
        b.named("clicks")
    with pytest.raises(ValueError, match="non-empty"):
        b.named("")
