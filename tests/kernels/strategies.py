"""Hypothesis strategies shared by the kernel tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

# Small pools make repeats likely (groups with many rows); the extremes and
# the wide range cover overflow-prone and hash-table paths.
int_keys = st.lists(
    st.one_of(
        st.sampled_from([0, 1, -1, I64_MIN, I64_MAX, I64_MIN + 1, I64_MAX - 1]),
        st.integers(-5, 5),
        st.integers(I64_MIN, I64_MAX),
    ),
    max_size=60,
).map(lambda xs: np.array(xs, dtype=np.int64))

float_keys = st.lists(
    st.one_of(
        st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1.0, -1.0, 2.0**63, -2.0**63]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-3, 3).map(float),
    ),
    max_size=60,
).map(lambda xs: np.array(xs, dtype=np.float64))

text = st.one_of(
    st.sampled_from(["", "a", "ab", "é", "日本語", "abcdefgh", "abcdefghi", "\x00", "a\x00"]),
    st.text(max_size=20),
)
string_keys = st.lists(st.one_of(st.none(), text), max_size=60)

codes_and_n = st.integers(1, 8).flatmap(
    lambda n: st.tuples(st.lists(st.integers(0, n - 1), max_size=60), st.just(n))
)

# Byte strings for the word-at-a-time paths: every length 0..20 around the
# 8- and 16-byte word boundaries, longer ones, NUL bytes and UTF-8.
byte_keys = st.lists(
    st.one_of(
        st.integers(0, 20).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.binary(min_size=17, max_size=40),
        st.text(max_size=12).map(lambda t: t.encode()),
        st.sampled_from([b"", b"\0", b"a", b"a\0", b"abcdefgh", b"abcdefgh\0", b"x" * 16, b"x" * 16 + b"\0"]),
    ),
    max_size=40,
)
