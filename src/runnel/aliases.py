"""PySpark's camelCase names: one table, aliases of the PEP 8 methods.

Each alias is the same function object as its PEP 8 method (so it carries
the same docstring); ``tests/test_aliases.py`` walks this table. Every
camelCase name of runnel's API is here, nowhere else: methods attached to a
class later (``dstream.savers.install``) are attached before :func:`install`
runs, and code that replaces methods (``pyspark.compat``) runs
:func:`install` again so that the aliases follow.
"""

from __future__ import annotations

from .context import Context
from .dataset import Dataset
from .dstream.base import DStream
from .dstream.receivers import Receiver
from .dstream.replayable import SourceDataset
from .dstream.state import MappedDStream, StateDStream
from .kafka.utils import KafkaUtils
from .streaming import StreamingContext
from .updaters import State, StateSpec

ALIASES: dict[type, dict[str, str]] = {
    DStream: {
        "flatMap": "flat_map", "mapPartitions": "map_partitions",
        "mapPartitionsWithIndex": "map_partitions_with_index", "mapValues": "map_values",
        "flatMapValues": "flat_map_values", "countByValue": "count_by_value", "reduceByKey": "reduce_by_key",
        "groupByKey": "group_by_key", "combineByKey": "combine_by_key", "partitionBy": "partition_by",
        "leftOuterJoin": "left_outer_join", "rightOuterJoin": "right_outer_join",
        "fullOuterJoin": "full_outer_join", "transformWith": "transform_with", "foreachRDD": "foreach_rdd",
        "mapBatches": "map_batches", "countByWindow": "count_by_window", "reduceByWindow": "reduce_by_window",
        "reduceByKeyAndWindow": "reduce_by_key_and_window", "countByValueAndWindow": "count_by_value_and_window",
        "groupByKeyAndWindow": "group_by_key_and_window", "updateStateByKey": "update_state_by_key",
        "mapWithState": "map_with_state",
        "foreachPartitionTransactional": "foreach_partition_transactional",
        "saveToParquet": "save_to_parquet", "saveToSqlite": "save_to_sqlite", "saveToKafka": "save_to_kafka",
        "saveAsTextFiles": "save_as_text_files", "saveAsParquetFiles": "save_as_parquet_files",
        "saveAsPickleFiles": "save_as_pickle_files",
    },
    Dataset: {
        "flatMap": "flat_map", "mapPartitions": "map_partitions",
        "mapPartitionsWithIndex": "map_partitions_with_index", "mapValues": "map_values",
        "flatMapValues": "flat_map_values", "reduceByKey": "reduce_by_key", "groupByKey": "group_by_key",
        "combineByKey": "combine_by_key", "partitionBy": "partition_by", "leftOuterJoin": "left_outer_join",
        "rightOuterJoin": "right_outer_join", "fullOuterJoin": "full_outer_join",
        "getNumPartitions": "get_num_partitions", "isEmpty": "is_empty", "sortBy": "sort_by",
        "sortByKey": "sort_by_key", "countByValue": "count_by_value", "countByKey": "count_by_key",
        "collectAsMap": "collect_as_map", "foreachPartition": "foreach_partition", "toPandas": "to_pandas",
        "mapBatches": "map_batches",
        "keyBy": "key_by", "zipWithIndex": "zip_with_index", "aggregateByKey": "aggregate_by_key",
        "foldByKey": "fold_by_key", "takeOrdered": "take_ordered", "saveAsTextFile": "save_as_text_file",
        "sampleVariance": "sample_variance", "sampleStdev": "sample_stdev", "sparkContext": "spark_context",
    },
    StreamingContext: {
        "queueStream": "queue_stream", "awaitTermination": "await_termination",
        "awaitTerminationOrTimeout": "await_termination_or_timeout",
        "addStreamingListener": "add_streaming_listener", "removeStreamingListener": "remove_streaming_listener",
        "getActive": "get_active", "getActiveOrCreate": "get_active_or_create", "getOrCreate": "get_or_create",
        "socketTextStream": "socket_text_stream", "textFileStream": "text_file_stream",
        "binaryRecordsStream": "binary_records_stream", "sparkContext": "spark_context",
    },
    Context: {
        "textFile": "text_file", "defaultParallelism": "default_parallelism", "getOrCreate": "get_or_create",
        "pickleFile": "pickle_file",
    },
    SourceDataset: {"offsetRanges": "offset_ranges"},
    KafkaUtils: {"createDirectStream": "create_direct_stream"},
    StateDStream: {"stateSnapshots": "state_snapshots"},
    MappedDStream: {"stateSnapshots": "state_snapshots"},
    StateSpec: {"initialState": "initial_state", "numPartitions": "num_partitions"},
    State: {"isTimingOut": "is_timing_out", "getOption": "get_option"},
    # Receiver.on_start/on_stop are dispatched (_call_hook) so that overriding either spelling works
    Receiver: {"onStart": "on_start", "onStop": "on_stop", "storeMany": "store_many", "reportError": "report_error",
               "isStopped": "is_stopped", "isStarted": "is_started"},
}


def install() -> None:
    for cls, table in ALIASES.items():
        for camel, snake in table.items():
            # look up in the class dict chain without triggering descriptors
            for klass in cls.__mro__:
                if snake in vars(klass):
                    setattr(cls, camel, vars(klass)[snake])
                    break
            else:
                raise AttributeError(f"alias {cls.__name__}.{camel} names a missing method {snake}")
