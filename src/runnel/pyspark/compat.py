"""PySpark's keyword spellings for runnel's methods: the one home of the translation.

runnel's methods take PEP 8 parameter names (``queue_stream(rdds,
one_at_a_time)``, ``stop(stop_spark_context, stop_gracefully)``); a ported
PySpark program passes PySpark's (``queueStream(rdds, oneAtATime=False)``,
``stop(stopSparkContext=True, stopGraceFully=False)``). :func:`install`
wraps each such method, in place, in a thin function that renames PySpark's
keywords to runnel's and calls the original, so both spellings work through
every name of the method (the PEP 8 name and its camelCase alias are still
one function object, as ``aliases.py`` requires).

Which keywords: every PEP 8 parameter's camelCase form
(``num_partitions`` -> ``numPartitions``), plus :data:`RENAMES` where
PySpark's name is not that (``sparkContext``, ``stopGraceFully`` with its
capital F, ``streamingListener`` …). Passing both spellings of one
parameter is a ``TypeError``. Wrapping is idempotent, and a rename whose
target parameter no longer exists fails at install, not in user code.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable

from .. import aliases
from ..context import Context
from ..dataset import Dataset
from ..dstream.base import DStream
from ..streaming import StreamingContext

#: PySpark's keyword -> runnel's parameter, where camelCasing the PEP 8 name does not give it.
RENAMES: dict[type, dict[str, dict[str, str]]] = {
    StreamingContext: {
        "__init__": {"sparkContext": "context_or_master"},
        "stop": {"stopGraceFully": "stop_gracefully"},
        "add_streaming_listener": {"streamingListener": "listener"},
        "remove_streaming_listener": {"streamingListener": "listener"},
    },
    Context: {
        "parallelize": {"c": "data"},
        "text_file": {"name": "path"},
    },
}

_CLASSES = (StreamingContext, Context, Dataset, DStream)


def camel(name: str) -> str:
    """``num_partitions`` -> ``numPartitions`` (leading underscores kept off).

    >>> camel("stop_spark_context"), camel("checkpoint_path"), camel("data")
    ('stopSparkContext', 'checkpointPath', 'data')
    """
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def keywords_of(fn: Callable, renames: dict[str, str]) -> dict[str, str]:
    """PySpark spelling -> runnel parameter for ``fn``."""
    params = inspect.signature(fn).parameters
    for pyspark_name, target in renames.items():
        if target not in params:
            raise TypeError(f"runnel.pyspark.compat: {fn.__qualname__} has no parameter {target!r} "
                            f"(the target of PySpark's {pyspark_name!r}); update RENAMES")
    spellings = {camel(p): p for p in params if camel(p) != p}
    spellings.update(renames)
    return spellings


def accept_keywords(fn: Callable, spellings: dict[str, str]) -> Callable:
    """``fn`` also accepting the keywords in ``spellings`` (PySpark name -> fn's name)."""
    if getattr(fn, "__pyspark_keywords__", None) is not None:
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for theirs, ours in spellings.items():
            if theirs in kwargs:
                if ours in kwargs:
                    raise TypeError(f"{fn.__qualname__}() got {theirs!r} and {ours!r}, two spellings "
                                    "of one argument")
                kwargs[ours] = kwargs.pop(theirs)
        return fn(*args, **kwargs)

    wrapper.__pyspark_keywords__ = dict(spellings)
    return wrapper


def _wrap_class(cls: type) -> None:
    renames = RENAMES.get(cls, {})
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") and name != "__init__":
            continue
        is_cm = isinstance(attr, classmethod)
        fn = attr.__func__ if is_cm else attr
        if not inspect.isfunction(fn) or getattr(fn, "__pyspark_keywords__", None) is not None:
            continue
        spellings = keywords_of(fn, renames.get(name, {}))
        if not spellings:
            continue
        wrapped = accept_keywords(fn, spellings)
        setattr(cls, name, classmethod(wrapped) if is_cm else wrapped)
    missing = set(renames) - set(vars(cls))
    if missing:
        raise TypeError(f"runnel.pyspark.compat: {cls.__name__} has no methods {sorted(missing)}; update RENAMES")


def install() -> None:
    """Accept PySpark's keywords on runnel's classes (the camelCase aliases follow). Idempotent.

    Also installs the file outputs (``saveAsTextFiles`` …), which ported programs use.
    """
    from ..dstream import savers
    savers.install()
    for cls in _CLASSES:
        _wrap_class(cls)
    # re-running the alias table copies the wrapped methods into every camelCase name
    aliases.install()
