"""Every Examples block of runnel.frame runs as a doctest."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["runnel.frame.schema", "runnel.frame.expr", "runnel.frame.frame", "runnel.frame.source",
           "runnel.frame.testing", "runnel.frame.groupby", "runnel.frame.ewm",
           "runnel.frame.event_time"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
