import numpy as np
import pyarrow as pa
import pytest

from runnel.dstream.rate import _vocabulary, generate


def test_a_batch_depends_only_on_seed_and_batch_number():
    for kind in ("words", "pairs", "ints"):
        a = generate(kind, 500, seed=3, t=7).to_records()
        assert a == generate(kind, 500, seed=3, t=7).to_records()
        assert a != generate(kind, 500, seed=3, t=8).to_records()
        assert a != generate(kind, 500, seed=4, t=7).to_records()


def test_words_are_lines_of_zipf_words_from_the_vocabulary():
    b = generate("words", 2000, seed=1, t=1, vocabulary=1000, words_per_line=7)
    assert b.layout == "value" and isinstance(b["value"], pa.Array) and b["value"].type == pa.string()
    lines = b.to_records()
    assert len(lines) == 2000 and all(type(s) is str for s in lines)
    words = [w for line in lines for w in line.split(" ")]
    assert all(len(line.split(" ")) == 7 for line in lines)
    vocab = _vocabulary(1000)[0].to_pylist()
    assert vocab[:3] == ["a", "b", "c"] and vocab[26:28] == ["aa", "ab"] and len(set(vocab)) == 1000
    assert set(words) <= set(vocab)
    # frequencies follow the bounded Zipf law: rank r has probability (r+1)**-1.2 / H
    p = np.arange(1, 1001, dtype=np.float64) ** -1.2
    p /= p.sum()
    rank_of = {w: r for r, w in enumerate(vocab)}
    counts = np.bincount([rank_of[w] for w in words], minlength=1000)
    for rank in (0, 1, 4):
        expected = p[rank] * len(words)
        assert abs(counts[rank] - expected) < 5 * np.sqrt(expected)


def test_pairs_and_ints_are_numpy_columns_in_range():
    b = generate("pairs", 1000, seed=0, t=2, keys=50)
    assert b.layout == ("key", "value")
    assert b["key"].dtype == np.int64 and b["value"].dtype == np.float64
    assert b["key"].min() >= 0 and b["key"].max() < 50 and 0 <= b["value"].min() and b["value"].max() < 1
    k, v = b.to_records()[0]
    assert type(k) is int and type(v) is float
    ints = generate("ints", 1000, seed=0, t=2, keys=10)
    assert ints.layout == "value" and ints["value"].dtype == np.int64 and set(ints.to_records()) <= set(range(10))
    assert len(generate("words", 0, seed=0, t=1)) == 0


def test_rate_stream_batches_equal_generate_on_every_executor(inputs_ssc):
    ssc = inputs_ssc()
    out = []
    ssc.rate_stream("pairs", 1001, seed=9, keys=30).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    parts = []
    ssc.rate_stream("words", 10, seed=9, words_per_line=3, num_partitions=3).glom() \
        .foreach_rdd(lambda rdd: parts.append([len(p) for p in rdd.collect()]))
    ssc.start()
    ssc.run_batches(3)
    assert out == [generate("pairs", 1001, 9, k, keys=30).to_records() for k in (1, 2, 3)]
    assert parts == [[3, 3, 4]] * 3


def test_invalid_options_are_rejected(inputs_ssc):
    with pytest.raises(ValueError, match="kind must be one of"):
        generate("floats", 10)
    with pytest.raises(TypeError, match="unknown rate stream option"):
        generate("ints", 10, vocab=5)
    with pytest.raises(ValueError, match="zipf exponent"):
        generate("words", 10, zipf=0)
    with pytest.raises(ValueError, match="words_per_line must be at least 1"):
        generate("words", 10, words_per_line=0)
    with pytest.raises(TypeError, match="records_per_batch must be an int"):
        generate("ints", 2.5)
    ssc = inputs_ssc()
    with pytest.raises(ValueError, match="keys must be at least 1"):
        ssc.rate_stream("pairs", 10, keys=0)
    with pytest.raises(ValueError, match="seed"):
        ssc.rate_stream("ints", 10, seed=-1)
