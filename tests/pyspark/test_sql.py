"""runnel.pyspark.sql: the Streaming Guide's DataFrame-in-foreachRDD pattern, on DuckDB."""

from __future__ import annotations

import pickle
import sys

import pytest

from runnel.pyspark import SparkConf, SparkContext
from runnel.pyspark.sql import DataFrame, Row, SparkSession


@pytest.fixture
def spark():
    sc = SparkContext(conf=SparkConf().setMaster("local").setAppName("sql"))
    session = SparkSession.builder.config(conf=sc.getConf()).getOrCreate()
    yield session
    session.stop()


def test_builder_returns_the_active_session_on_the_running_context(spark):
    again = SparkSession.builder.config(conf=SparkConf().set("x", "y")).appName("other").getOrCreate()
    assert again is spark and spark.sparkContext is SparkContext.getOrCreate()


def test_rows_from_a_dataset_queried_with_sql(spark, capsys):
    sc = spark.sparkContext
    words = sc.parallelize("to be or not to be that is".split(), 2)
    df = spark.createDataFrame(words.map(lambda w: Row(word=w)))
    assert isinstance(df, DataFrame) and df.columns == ["word"] and df.count() == 8
    df.createOrReplaceTempView("words")
    counts = spark.sql("select word, count(*) as total from words group by word order by total desc, word")
    got = counts.collect()
    assert got == [Row(word="be", total=2), Row(word="to", total=2), Row(word="is", total=1),
                   Row(word="not", total=1), Row(word="or", total=1), Row(word="that", total=1)]
    assert got[0].word == "be" and got[0]["total"] == 2 and type(got[0].total) is int
    assert counts.toPandas().to_dict("list") == {"word": ["be", "to", "is", "not", "or", "that"],
                                                 "total": [2, 2, 1, 1, 1, 1]}
    counts.show(3)
    assert capsys.readouterr().out == (
        "+----+-----+\n"
        "|word|total|\n"
        "+----+-----+\n"
        "|  be|    2|\n"
        "|  to|    2|\n"
        "|  is|    1|\n"
        "+----+-----+\n"
        "only showing top 3 rows\n"
        "\n")
    # a later batch replaces the view
    spark.createDataFrame(sc.parallelize([Row(word="x")])).createOrReplaceTempView("words")
    assert spark.sql("select count(*) as n from words").collect() == [Row(n=1)]


def test_show_truncates_long_strings_and_writes_nulls_as_spark(spark, capsys):
    df = spark.createDataFrame([("a" * 25, None, True), ("b", 1.5, False)], ["text", "x", "flag"])
    df.show()
    df.show(truncate=False)
    out = capsys.readouterr().out
    assert out == (
        "+--------------------+----+-----+\n"
        "|                text|   x| flag|\n"
        "+--------------------+----+-----+\n"
        "|aaaaaaaaaaaaaaaaa...|null| true|\n"
        "|                   b| 1.5|false|\n"
        "+--------------------+----+-----+\n"
        "\n"
        "+-------------------------+----+-----+\n"
        "|text                     |x   |flag |\n"
        "+-------------------------+----+-----+\n"
        "|aaaaaaaaaaaaaaaaaaaaaaaaa|null|true |\n"
        "|b                        |1.5 |false|\n"
        "+-------------------------+----+-----+\n"
        "\n")


def test_create_data_frame_inputs(spark):
    assert spark.createDataFrame([(1, "a")]).columns == ["_1", "_2"]
    assert spark.createDataFrame([{"k": 1, "v": "a"}]).collect() == [Row(k=1, v="a")]
    import pandas as pd
    assert spark.createDataFrame(pd.DataFrame({"a": [1, 2]})).collect() == [Row(a=1), Row(a=2)]
    with pytest.raises(ValueError, match="can not infer schema from empty dataset"):
        spark.createDataFrame(spark.sparkContext.emptyRDD())


def test_row_behaves_as_pysparks():
    r = Row(word="a", total=2)
    assert r == ("a", 2) and r.asDict() == {"word": "a", "total": 2} and repr(r) == "Row(word='a', total=2)"
    assert pickle.loads(pickle.dumps(r)).word == "a"
    Pair = Row("k", "v")
    assert Pair(1, 2) == Row(k=1, v=2) and Pair(1, 2).v == 2
    with pytest.raises(AttributeError):
        r.missing
    with pytest.raises(RuntimeError, match="read-only"):
        r.word = "b"


def test_without_duckdb_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)
    sc = SparkContext("local", "no-duckdb")
    try:
        with pytest.raises(ImportError, match=r"runnel\[sql\]"):
            SparkSession.builder.getOrCreate()
    finally:
        sc.stop()
