"""Plain-Python references for the kernels: obviously right, slow."""

from __future__ import annotations

import functools
import math

import numpy as np


def dict_key_float(x):
    """The dict key a float becomes under factorize_float64's semantics."""
    if math.isnan(x):
        return "nan"  # all NaNs are one group (documented choice)
    return x + 0.0  # -0.0 == 0.0 already in a dict; normalise for display


def factorize(keys):
    """Codes and first-rows by a dict in first-appearance order."""
    seen = {}
    codes, first = [], []
    for i, k in enumerate(keys):
        if k not in seen:
            seen[k] = len(first)
            first.append(i)
        codes.append(seen[k])
    return np.array(codes, dtype=np.int64), np.array(first, dtype=np.int64)


def group_values(codes, ngroups, values):
    groups = [[] for _ in range(ngroups)]
    for c, v in zip(codes, values):
        groups[c].append(v)
    return groups


def reduce(codes, ngroups, values, op):
    """Fold each group's values in arrival order with Python semantics."""
    ops = {
        "sum": lambda g: functools.reduce(lambda a, b: a + b, g),
        "min": lambda g: functools.reduce(min, g),
        "max": lambda g: functools.reduce(max, g),
        "count": len,
        "first": lambda g: g[0],
        "last": lambda g: g[-1],
        "mean": lambda g: functools.reduce(lambda a, b: a + b, g) / len(g),
    }
    return [ops[op](g) for g in group_values(codes, ngroups, values)]


def scatter(ids, n):
    """Rows per id by appending to n lists."""
    parts = [[] for _ in range(n)]
    for i, p in enumerate(ids):
        parts[p].append(i)
    order = [i for part in parts for i in part]
    bounds = np.cumsum([0] + [len(p) for p in parts])
    return np.array(order, dtype=np.int64), bounds.astype(np.int64)


def join(left_codes, right_codes, ngroups, how):
    """Nested-loop join emitted in cogroup-then-product order."""
    li, ri = [], []
    for c in range(ngroups):
        ls = [i for i, x in enumerate(left_codes) if x == c]
        rs = [j for j, x in enumerate(right_codes) if x == c]
        if ls and rs:
            for i in ls:
                for j in rs:
                    li.append(i)
                    ri.append(j)
        elif ls and how in ("left", "full"):
            li += ls
            ri += [-1] * len(ls)
        elif rs and how in ("right", "full"):
            li += [-1] * len(rs)
            ri += rs
    return np.array(li, dtype=np.int64), np.array(ri, dtype=np.int64)


_MASK64 = (1 << 64) - 1


def _rotl64(x, r):
    return ((x << r) | (x >> (64 - r))) & _MASK64


def hash_bytes(b):
    """The definition of runnel's string hash, in plain Python ints.

    Seed with the length, one xxHash64-style round per 8-byte little-endian
    word (the last one zero-padded), then splitmix64's finaliser. The
    kernels compute it with masked unaligned loads and, up to 16 bytes,
    without a loop; this is what they must agree with.
    """
    p1, p2, p3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x85EBCA77C2B2AE63
    h = 0x27D4EB2F165667C5 ^ ((len(b) * p1) & _MASK64)
    for i in range(0, len(b), 8):
        w = int.from_bytes(b[i:i + 8].ljust(8, b"\0"), "little")
        h ^= (_rotl64((w * p2) & _MASK64, 31) * p1) & _MASK64
        h = (_rotl64(h, 27) * p1 + p3) & _MASK64
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
    return h ^ (h >> 31)


def windows_holding(ts, size, slide, offset=0):
    """Every window start s = offset + k * slide with s <= ts < s + size, by trying them all."""
    k = (ts - offset) // slide
    return [offset + j * slide for j in range(k - size // slide - 2, k + 1)
            if offset + j * slide <= ts < offset + j * slide + size]


def sessions(codes, starts, ends):
    """Merged intervals per key by repeated pairwise union (obviously right, quadratic)."""
    groups = [{i} for i in range(len(codes))]
    changed = True
    while changed:
        changed = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                ga, gb = groups[a], groups[b]
                if not ga or not gb or codes[next(iter(ga))] != codes[next(iter(gb))]:
                    continue
                lo_a, hi_a = min(starts[i] for i in ga), max(ends[i] for i in ga)
                lo_b, hi_b = min(starts[i] for i in gb), max(ends[i] for i in gb)
                if lo_a < hi_b and lo_b < hi_a:
                    groups[a] = ga | gb
                    groups[b] = set()
                    changed = True
    return [g for g in groups if g]
