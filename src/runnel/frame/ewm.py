"""``sdf.groupby(keys)[column].ewm(...)``: exponentially weighted mean, sum, std, var per key across batches.

Each row gets what pandas' ``df.groupby(keys)[column].ewm(...).mean()`` (or
``sum``/``std``/``var``) gives it on all the data so far, bit for bit: the
rows go through the same shuffle as the other cumulative operations
(``cumulative.py``, rows of a key in arrival order), and each key's carry is
the state of pandas' recursion (``kernels.ewm``), so a batch continues
exactly where the last one stopped. The decay is given as in pandas: exactly
one of ``com``, ``span``, ``halflife``, ``alpha``; ``adjust``,
``ignore_na`` and ``min_periods`` mean what they mean there.

Not supported, as not sensible for a stream: ``times`` (a decay by
timestamps; event time belongs to event-time windows) and pandas' online
``ewm(...).online()`` (this *is* online). One divergence: pandas 3 gives
``adjust=False`` with ``com == 1`` (``alpha=0.5``) alone a different weight
after a NaN gap (pandas-dev/pandas#66523, an open regression); here every
``com`` follows the documented recursion, as pandas does for all others.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from runnel import kernels as K

if TYPE_CHECKING:
    from .frame import StreamingDataFrame
    from .groupby import GroupBy

__all__ = ["ExponentialMoving", "center_of_mass", "ewm_rows"]


def center_of_mass(com: float | None = None, span: float | None = None, halflife: float | None = None,
                   alpha: float | None = None) -> float:
    """The center of mass that exactly one of ``com``, ``span``, ``halflife``, ``alpha`` gives (as pandas).

    Examples
    --------
    >>> center_of_mass(span=3), center_of_mass(alpha=0.5), center_of_mass(com=2)
    (1.0, 1.0, 2.0)
    """
    given = {k: v for k, v in (("com", com), ("span", span), ("halflife", halflife), ("alpha", alpha))
             if v is not None}
    if len(given) != 1:
        raise ValueError(f"ewm needs exactly one of com, span, halflife, alpha; got {sorted(given) or 'none'}")
    if com is not None:
        if com < 0:
            raise ValueError(f"ewm: com must be at least 0, got {com!r}")
        return float(com)
    if span is not None:
        if span < 1:
            raise ValueError(f"ewm: span must be at least 1, got {span!r}")
        return float((span - 1) / 2)
    if halflife is not None:
        if not isinstance(halflife, (int, float)) or halflife <= 0:
            raise ValueError(f"ewm: halflife must be a number above 0 (timestamps are not supported), "
                             f"got {halflife!r}")
        return float(1 / (1 - math.exp(math.log(0.5) / halflife)) - 1)
    if not 0 < alpha <= 1:
        raise ValueError(f"ewm: alpha must be in (0, 1], got {alpha!r}")
    return float((1 - alpha) / alpha)


def ewm_rows(x: np.ndarray, codes: np.ndarray, g: int, ccodes: np.ndarray, carried: list, kind: str,
             params: tuple) -> tuple[np.ndarray, list]:
    """(the ewm of each row, every key's new carry) for one partition's rows.

    ``carried[i]`` is the carry (a tuple, the kernel's state row) of the key with
    code ``ccodes[i]``; keys without one start fresh.
    """
    op = kind.removeprefix("ewm_")
    com, adjust, ignore_na, min_periods, bias = params
    state = K.ewm_state(g, op)
    if len(carried):
        state[ccodes] = np.array(carried, dtype=np.float64)
    out, state = K.ewm_update(codes, x, state, op, com, adjust, ignore_na, min_periods, bias)
    return out, [tuple(r) for r in state.tolist()]


class ExponentialMoving:
    """``groupby(keys)[column].ewm(...)``: ``mean()``, ``sum()``, ``std()``, ``var()`` of each key's rows so far,
    exponentially weighted, carried across batches (see the module docstring).

    Examples
    --------
    >>> import pandas as pd
    >>> from runnel.testing import run_frame
    >>> frames = [pd.DataFrame({"k": ["a", "b", "a"], "v": [1.0, 5.0, 2.0]}), pd.DataFrame({"k": ["a"], "v": [4.0]})]
    >>> out = run_frame(lambda s: s.groupby("k")["v"].ewm(com=1).mean(), frames)
    >>> out[1]["v_ewm_mean"].round(4).tolist()
    [3.0]
    """

    def __init__(self, gb: "GroupBy", com: float, adjust: bool, ignore_na: bool, min_periods: int):
        self._gb = gb
        self._params = (com, bool(adjust), bool(ignore_na), max(int(min_periods), 1))

    def _run(self, op: str, name: str | None, bias: bool = False) -> "StreamingDataFrame":
        return self._gb._cumulative(f"ewm_{op}", name=name, params=self._params + (bool(bias),))

    def mean(self, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_ewm_mean``: each key's exponentially weighted mean so far."""
        return self._run("mean", name)

    def sum(self, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_ewm_sum`` (``adjust=True`` only, as pandas)."""
        if not self._params[1]:
            raise NotImplementedError("ewm(...).sum() needs adjust=True (as pandas)")
        return self._run("sum", name)

    def std(self, bias: bool = False, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_ewm_std``: the exponentially weighted standard deviation (unbiased
        unless ``bias=True``)."""
        return self._run("std", name, bias)

    def var(self, bias: bool = False, name: str | None = None) -> "StreamingDataFrame":
        """The frame with ``<column>_ewm_var``: the exponentially weighted variance (unbiased unless
        ``bias=True``)."""
        return self._run("var", name, bias)
