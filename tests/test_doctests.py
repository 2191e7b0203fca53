"""Every Examples block in the public modules runs as a doctest."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "runnel.kernels._config", "runnel.kernels.aggregate", "runnel.kernels.apply", "runnel.kernels.hashing",
    "runnel.kernels.join", "runnel.kernels.partition", "runnel.kernels.ewm",
    "runnel.kernels.event_windows", "runnel.kernels.running",
    "runnel.batch", "runnel.clock", "runnel.context", "runnel.dataset", "runnel.streaming", "runnel.listener",
    "runnel.storage.ipc", "runnel.storage.store", "runnel.executors.base", "runnel.executors.serial",
    "runnel.dstream.savers", "runnel.dstream.receivers", "runnel.dstream.rate", "runnel.testing",
    "runnel.storage.wal", "runnel.dstream.ratecontrol", "runnel.sinks",
    "runnel.examples.line_server", "runnel.pyspark.conf", "runnel.pyspark.storagelevel",
    "runnel.partitioners", "runnel.statcounter", "runnel.accumulators", "runnel.pyspark.broadcast",
    "runnel.pyspark.sql", "runnel.kafka.source", "runnel.kafka.utils", "runnel.kafka.mock", "runnel.mqtt",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
