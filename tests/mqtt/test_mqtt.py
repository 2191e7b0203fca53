"""MQTT streams against a real mosquitto broker: wildcards, QoS 0/1/2, acks after the WAL, reconnects."""

from __future__ import annotations

import collections
import os
import sys

import pytest
from broker import publish

from runnel import Context, ManualClock, StreamingContext
from runnel.listener import StreamingListener
from runnel.mqtt import MQTTReceiver, check_topic_filter, mqtt_stream, parse_broker
from runnel.storage.wal import WriteAheadLog

WAL = {"spark.streaming.receiver.writeAheadLog.enable": "true"}


@pytest.fixture
def local_ssc():
    """``make(conf, checkpoint_dir=None)``: manual-clock StreamingContexts on a local Context, stopped after."""
    made = []

    def make(conf=None, checkpoint_dir=None):
        ssc = StreamingContext(Context("local", conf=conf or {}), 1, clock=ManualClock())
        if checkpoint_dir is not None:
            ssc.checkpoint(str(checkpoint_dir))
        made.append(ssc)
        return ssc

    yield make
    for ssc in made:
        ssc.stop()


def started(ssc, stream, poll):
    ssc.start()
    poll(stream.receiver.subscribed.is_set, "the broker to grant the subscription")


def test_wildcard_subscription_word_count(ssc, broker, topic_root, poll, collect):
    root = topic_root
    lines = mqtt_stream(ssc, broker.url, [f"{root}/sensors/+/temp", f"{root}/alerts/#"], encoding="utf-8")
    counts = collect(lines.flat_map(lambda r: r[1].split()).map(lambda w: (w, 1)).reduce_by_key(lambda a, b: a + b))
    per_topic = collect(lines.map(lambda r: (r[0], 1)).reduce_by_key(lambda a, b: a + b))
    started(ssc, lines, poll)
    ignored = [(f"{root}/sensors/a/humidity", "x y"), (f"{root}/sensors/a/b/temp", "x"), (f"{root}/other", "x")]
    matching = [(f"{root}/sensors/{s}/temp", f"hot cold w{i % 5}") for i, s in enumerate("abcabcab")]
    matching += [(f"{root}/alerts", "fire"), (f"{root}/alerts/high/3", "fire hot"), (f"{root}/alerts/x", "")]
    publish(broker.url, ignored + matching, qos=1)       # in order: the ignored ones were routed first
    poll(lambda: lines.num_received == len(matching), "every matching message")
    ssc.run_batches(1)
    assert sorted(counts[0]) == sorted(collections.Counter(w for _, p in matching for w in p.split()).items())
    assert sorted(per_topic[0]) == sorted(collections.Counter(t for t, _ in matching).items())


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_every_qos_delivers_each_message_once_with_acks_only_after_the_wal(local_ssc, broker, topic_root, poll,
                                                                          tmp_path, sub_qos):
    ssc = local_ssc(WAL, tmp_path)
    stream = mqtt_stream(ssc, broker.url, f"{topic_root}/#", qos=sub_qos, with_topic=False)
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    started(ssc, stream, poll)
    receiver = stream.receiver
    assert receiver.session == (receiver.stable_id(), sub_qos == 0)   # the WAL is on: a fixed id, persistent
    wal = stream.generator.wal
    acks = []                        # (mid, qos, newest durable log entry) per acknowledgement sent
    send_ack = receiver._client.ack
    receiver._client.ack = lambda mid, qos: (acks.append((mid, qos, wal.synced_seq)), send_ack(mid, qos))[1]
    messages = {pub_qos: [(f"{topic_root}/q{pub_qos}", f"m{pub_qos}-{i}".encode()) for i in range(40)]
                for pub_qos in (0, 1, 2)}
    for pub_qos, batch in messages.items():
        publish(broker.url, batch, qos=pub_qos)
    want = sorted(p for batch in messages.values() for _, p in batch)
    poll(lambda: stream.num_received >= len(want), "every message")
    ssc.run_batches(1)
    assert sorted(out[0]) == want                              # each once, whatever the QoS
    # a message comes at the lower of the two QoS; each QoS 1/2 one is acknowledged once ...
    assert collections.Counter(q for _, q, _ in acks) == {q: 40 * sum(min(p, sub_qos) == q for p in (0, 1, 2))
                                                          for q in (1, 2) if sub_qos >= q}
    # ... and only once the log held it durably: the k-th ack saw at least k records durable
    reader = WriteAheadLog(os.path.join(tmp_path, "receivedData", stream.name, "blocks"))
    records_through = {}
    total = 0
    for seq, block in reader.read_batches():
        total += len(block)
        records_through[seq] = total
    for k, (_, _, durable) in enumerate(acks, 1):
        assert durable > 0 and records_through[durable] >= k


def test_without_the_wal_a_clean_session_and_acks_on_buffering(local_ssc, broker, topic_root, poll):
    ssc = local_ssc()
    stream = mqtt_stream(ssc, broker.url, f"{topic_root}/+", qos=1)
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    started(ssc, stream, poll)
    assert stream.receiver.session == ("", True)               # the broker names us and forgets us
    publish(broker.url, [(f"{topic_root}/a", b"\x00\xff"), (f"{topic_root}/b", b"")], qos=1)
    poll(lambda: stream.num_received == 2, "both messages")
    ssc.run_batches(1)
    assert out == [[(f"{topic_root}/a", b"\x00\xff"), (f"{topic_root}/b", b"")]]


class Errors(StreamingListener):
    def __init__(self):
        self.messages = []

    def onReceiverError(self, receiverError):  # noqa: N802
        info = receiverError.receiver_info
        self.messages.append(f"{info.last_error_message}\n{info.last_error or ''}")

    def onReceiverStopped(self, receiverStopped):  # noqa: N802
        self.messages.append("stopped")


def test_reconnects_with_backoff_after_the_broker_restarts(local_ssc, own_broker, topic_root, poll):
    own_broker.start()
    ssc = local_ssc()
    errors = Errors()
    ssc.add_streaming_listener(errors)
    stream = mqtt_stream(ssc, own_broker.url, f"{topic_root}/#", qos=1, client_id="restart-test",
                         backoff=(0.05, 0.4), encoding="utf-8", with_topic=False)
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    started(ssc, stream, poll)
    receiver = stream.receiver
    assert receiver.session == ("restart-test", False)
    publish(own_broker.url, [(f"{topic_root}/x", f"before {i}") for i in range(5)])
    poll(lambda: stream.num_received == 5, "the messages before the restart")
    own_broker.stop()
    poll(lambda: any("lost the connection" in m for m in errors.messages), "the disconnection reported")
    poll(lambda: any("cannot connect" in m for m in errors.messages), "a failed reconnection attempt reported")
    own_broker.start()
    poll(lambda: receiver.connections == 2 and receiver.subscribed.is_set(), "the reconnection", timeout=20)
    publish(own_broker.url, [(f"{topic_root}/x", f"after {i}") for i in range(5)])
    poll(lambda: ssc.run_batches(1) is None and f"after 4" in sum(out, []), "the messages after the restart")
    got = sum(out, [])
    # at least once: a "before" message whose ack the broker had not read when it stopped comes again
    before, after = got[:got.index("after 0")], got[got.index("after 0"):]
    assert after == [f"after {i}" for i in range(5)]
    assert before[:5] == [f"before {i}" for i in range(5)] and set(before) == set(before[:5])


def test_a_persistent_session_gets_what_was_published_while_the_receiver_was_away(local_ssc, broker, topic_root,
                                                                                poll, tmp_path):
    ssc = local_ssc(WAL, tmp_path / "ck")
    stream = mqtt_stream(ssc, broker.url, f"{topic_root}/#", encoding="utf-8", with_topic=False)
    stream.foreach_rdd(lambda rdd: None)
    started(ssc, stream, poll)
    client_id = stream.receiver.session[0]
    ssc.stop()
    publish(broker.url, [(f"{topic_root}/x", f"m{i}") for i in range(30)], qos=1)   # nobody connected

    ssc2 = local_ssc(WAL, tmp_path / "ck")                     # the same program, restarted
    stream2 = mqtt_stream(ssc2, broker.url, f"{topic_root}/#", encoding="utf-8", with_topic=False)
    out = []
    stream2.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    started(ssc2, stream2, poll)
    assert stream2.receiver.session == (client_id, False)
    poll(lambda: stream2.num_received == 30, "the messages the broker kept")
    ssc2.run_batches(1)
    assert out == [[f"m{i}" for i in range(30)]]


def test_pyspark_mqtt_utils(local_ssc, broker, topic_root, poll):
    from runnel.pyspark.storagelevel import StorageLevel
    from runnel.pyspark.streaming.mqtt import MQTTUtils

    ssc = local_ssc()
    lines = MQTTUtils.createStream(ssc, broker.url, f"{topic_root}/a")
    pairs = MQTTUtils.createPairedStream(ssc, broker.url, [f"{topic_root}/a", f"{topic_root}/b"],
                                         StorageLevel.MEMORY_ONLY)
    got = ([], [])
    lines.foreachRDD(lambda rdd: got[0].append(rdd.collect()))
    pairs.foreachRDD(lambda rdd: got[1].append(rdd.collect()))
    ssc.start()
    poll(lambda: lines.receiver.subscribed.is_set() and pairs.receiver.subscribed.is_set(), "both subscriptions")
    assert lines.receiver.qos == 1 and pairs.receiver.storage_level == StorageLevel.MEMORY_ONLY
    publish(broker.url, [(f"{topic_root}/a", "héllo"), (f"{topic_root}/b", b"\xffx")])
    poll(lambda: lines.num_received == 1 and pairs.num_received == 2, "the messages")
    ssc.run_batches(1)
    assert got == ([["héllo"]], [[(f"{topic_root}/a", "héllo"), (f"{topic_root}/b", "\ufffdx")]])


def test_receiver_definitions_are_checked():
    with pytest.raises(ValueError, match="wildcard must be a whole level, got 'a\\+'"):
        check_topic_filter("x/a+/y")
    with pytest.raises(ValueError, match="'#' must be the last level"):
        check_topic_filter("x/#/y")
    assert check_topic_filter("+/+/#") == "+/+/#"
    with pytest.raises(ValueError, match="qos must be 0, 1 or 2, got 3"):
        MQTTReceiver("localhost", "a", qos=3)
    with pytest.raises(ValueError, match="at least one topic filter"):
        MQTTReceiver("localhost", [])
    with pytest.raises(ValueError, match="scheme must be one of"):
        parse_broker("http://localhost:1883")
    with pytest.raises(ValueError, match="port is not a number"):
        parse_broker("tcp://localhost:99999")
    with pytest.raises(LookupError):
        MQTTReceiver("localhost", "a", encoding="no-such-codec")
    assert parse_broker("mqtts://h:1") == ("h", 1, True)


def test_a_persistent_session_without_a_client_id_is_a_reported_error(local_ssc, broker, poll):
    ssc = local_ssc()
    errors = Errors()
    ssc.add_streaming_listener(errors)
    stream = mqtt_stream(ssc, broker.url, "x", clean_session=False)     # no client id, no WAL to derive one
    stream.receiver.max_restarts = 0
    stream.foreach_rdd(lambda rdd: None)
    ssc.start()
    poll(lambda: any("needs a fixed client id" in m for m in errors.messages), "the error reported")
    poll(lambda: "stopped" in errors.messages, "the receiver to give up and stop")
    assert not any("Error stopping" in m for m in errors.messages), errors.messages


def test_a_missing_paho_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "paho" or m.startswith("paho.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "paho", None)
    with pytest.raises(ImportError, match=r"pip install 'runnel\[mqtt\]'"):
        MQTTReceiver("localhost", "a")
