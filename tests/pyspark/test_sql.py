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


def test_keyword_rows_are_matched_to_columns_by_field_name(spark):
    # Row(**kwargs) converts by name in PySpark; a Row class's rows by position
    df = spark.createDataFrame([Row(a=1, b=10), Row(b=20, a=2)])
    assert df.collect() == [Row(a=1, b=10), Row(a=2, b=20)]
    Pair = Row("a", "b")
    assert spark.createDataFrame([Pair(1, 10), Pair(2, 20)]).collect() == [Row(a=1, b=10), Row(a=2, b=20)]
    shuffled = spark.sparkContext.parallelize([Row(b=20, a=2)] * 3, 2)   # pickled rows keep matching by name
    assert spark.createDataFrame(shuffled, "a int, b int").collect() == [Row(a=2, b=20)] * 3
    with pytest.raises(ValueError, match=r"Row\(c=1\) has no field 'a'"):
        spark.createDataFrame([Row(a=1, b=2), Row(c=1)])


def test_ddl_string_schema_names_and_types_the_columns(spark):
    df = spark.createDataFrame([("a", 1, 2.5), ("b", None, 1.0)], "word string, n int, x double")
    assert df.columns == ["word", "n", "x"]
    assert repr(df) == "DataFrame[word: varchar, n: integer, x: double]"
    assert df.collect() == [Row(word="a", n=1, x=2.5), Row(word="b", n=None, x=1.0)]
    import datetime
    typed = spark.createDataFrame([(1, True, datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4), 1.5)],
                                  "big: bigint, ok: boolean, day: date, at: timestamp, f: float")
    assert repr(typed) == "DataFrame[big: bigint, ok: boolean, day: date, at: timestamp, f: float]"
    assert typed.collect()[0].day == datetime.date(2024, 1, 2)
    with pytest.raises(ValueError, match=r"column 'd' has type 'decimal\(10,2\)'.*supported: string, int"):
        spark.createDataFrame([(1,)], "d decimal(10,2)")
    with pytest.raises(ValueError, match=r"schema 'int' .*'name type, \.\.\.'"):
        spark.createDataFrame([(1,)], "int")
    with pytest.raises(TypeError, match=r"column 'n' \(int\): .*'x'"):
        spark.createDataFrame([("a", "x")], "word string, n int")


def test_builder_config_applies_to_the_existing_session(spark):
    again = SparkSession.builder.config("spark.sql.shuffle.partitions", "4").config("my.key", 1).getOrCreate()
    assert again is spark
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4" and spark.conf.get("my.key") == "1"
