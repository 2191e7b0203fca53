"""MQTT input: a receiver subscribed to topics of an MQTT broker (needs ``runnel[mqtt]``, paho-mqtt 2).

``mqtt_stream(ssc, "tcp://broker:1883", ["sensors/+/temp", "alerts/#"], qos=1)``
is a stream of ``(topic, payload)`` records (payload ``bytes``, or ``str``
with ``encoding=``). PySpark's ``MQTTUtils.createStream`` is in
:mod:`runnel.pyspark.streaming.mqtt`.

Delivery guarantees, by QoS and the receiver write-ahead log
(``spark.streaming.receiver.writeAheadLog.enable``, needs ``ssc.checkpoint(dir)``)::

    QoS 0            at most once: a message in flight or buffered when the driver dies is lost
    QoS 1, no WAL    acknowledged to the broker once buffered: a driver kill loses the
                     messages received and not yet processed
    QoS 1, WAL       at least once across driver kills: a message is acknowledged (PUBACK) only
                     after the block holding it is durable in the log, the session is persistent
                     (a fixed client id, clean_session False), so the broker keeps what arrives
                     while the driver is down and sends again what was never acknowledged.
                     A message logged but not yet acknowledged at the kill comes twice.
    QoS 2, WAL       exactly once while the driver lives (PUBCOMP after the log). Across a driver
                     kill a message whose QoS 2 handshake was half done can be lost: paho confirms
                     receipt (PUBREC) on arrival, before any code of ours runs, and keeps that
                     state in memory only; for no loss across kills use QoS 1. (After such a
                     kill paho, acknowledging by hand, leaves the PUBREL the broker sends again
                     unanswered: that message keeps one of the session's in-flight slots.)

So QoS 1 with the WAL is the reliable setting. For exactly-once *totals* on
top of it, publish a unique id with each message and count each id once
(``update_state_by_key`` keyed by the id, keeping the first record): the
duplicates are redelivered messages, which carry the id of their first
delivery. Deduplicating inside the receiver by MQTT packet id cannot be
exact: the broker reuses a packet id once it was acknowledged, and whether
an acknowledgement left before a kill is not known after it.

Pieces and who owns what::

    paho network thread   on_message: appends (record, mid, qos) to ``buffer`` (waits while it is full)
    flusher thread        takes the whole buffer, ``store``s it as one block (durable on return with
                          the WAL), then acknowledges its QoS 1/2 messages in arrival order
    paho reconnects       with exponential backoff (``backoff``), and we subscribe again on every connect

"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any, Sequence

from .dstream.base import DStream
from .dstream.receivers import Receiver, ReceiverInputDStream, ReceiverStoppedError

_POLL = 0.25               # seconds between checks of the halt flag while waiting
_JOIN_TIMEOUT = 10.0
_SCHEMES = {"tcp": False, "mqtt": False, "ssl": True, "mqtts": True}


def _paho():
    """paho-mqtt's client module (2.x); an ImportError naming the extra when it is missing or too old."""
    try:
        import paho.mqtt
        import paho.mqtt.client as client
    except ImportError as e:
        raise ImportError("runnel.mqtt needs paho-mqtt 2: install the extra with pip install 'runnel[mqtt]' "
                          "(or pip install 'paho-mqtt>=2')") from e
    if int(paho.mqtt.__version__.split(".")[0]) < 2:
        raise ImportError(f"runnel.mqtt needs paho-mqtt 2, found {paho.mqtt.__version__}: "
                          "pip install 'runnel[mqtt]' (or pip install -U 'paho-mqtt>=2')")
    return client


def parse_broker(url: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of a broker address: ``tcp://h:1883``, ``mqtt://h``, ``ssl://h:8883``, ``h:p``, ``h``.

    Examples
    --------
    >>> parse_broker("tcp://localhost:1883")
    ('localhost', 1883, False)
    >>> parse_broker("ssl://broker.example")
    ('broker.example', 8883, True)
    >>> parse_broker("10.0.0.5")
    ('10.0.0.5', 1883, False)
    """
    text = url if "://" in url else f"tcp://{url}"
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"MQTT broker {url!r}: the scheme must be one of {sorted(_SCHEMES)}, got {parts.scheme!r}")
    tls = _SCHEMES[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"MQTT broker {url!r}: the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise ValueError(f"MQTT broker {url!r} names no host")
    return parts.hostname, port or (8883 if tls else 1883), tls


def check_topic_filter(topic: Any) -> str:
    """``topic`` if it is a valid MQTT topic filter (``+`` a whole level, ``#`` a whole last level)."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"an MQTT topic filter must be a non-empty string, got {topic!r}")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if ("+" in level or "#" in level) and level not in ("+", "#"):
            raise ValueError(f"MQTT topic filter {topic!r}: a wildcard must be a whole level, got {level!r}")
        if level == "#" and i != len(levels) - 1:
            raise ValueError(f"MQTT topic filter {topic!r}: '#' must be the last level")
    if "\0" in topic:
        raise ValueError(f"MQTT topic filter {topic!r} contains a NUL character")
    return topic


class MQTTReceiver(Receiver):
    """Messages of an MQTT broker's topics (see the module docstring for the guarantees).

    Parameters
    ----------
    broker : str
        ``tcp://host:port`` (also ``mqtt://``; ``ssl://`` or ``mqtts://`` for TLS with the
        system's CA certificates), ``host:port`` or ``host``.
    topics : str or sequence of str
        Topic filters, wildcards allowed (``sensors/+/temp``, ``alerts/#``).
    qos : {0, 1, 2}
        The subscription's QoS: the most the broker uses to send to us (a message comes at
        the lower of this and its publisher's QoS).
    client_id : str, optional
        Default: with the write-ahead log on, :meth:`Receiver.stable_id` (the same after a
        restart from the checkpoint); otherwise one the broker makes up for this connection.
    clean_session : bool, optional
        Default: a persistent session (False) when there is a fixed client id and ``qos > 0``.
    encoding : str, optional
        Decode payloads to ``str`` with it (invalid bytes replaced); ``bytes`` by default.
    with_topic : bool
        Records are ``(topic, payload)`` (default) or the payload alone.
    username, password : str, optional
        Credentials for the broker (stored with the program in checkpoints, like everything
        the stream is defined with).
    keepalive : int
        Seconds between pings while the connection is quiet.
    backoff : (float, float)
        First and largest wait (seconds) between reconnection attempts; doubles per failure.
    max_buffered : int
        Messages received and not yet stored after which the network thread waits.
    """

    def __init__(self, broker: str, topics: str | Sequence[str], qos: int = 1, *, client_id: str | None = None,
                 clean_session: bool | None = None, encoding: str | None = None, with_topic: bool = True,
                 username: str | None = None, password: str | None = None, keepalive: int = 60,
                 backoff: tuple[float, float] = (0.1, 30.0), max_buffered: int = 100_000,
                 storage_level: Any = None):
        super().__init__(storage_level)
        _paho()                                     # fail at definition, not later on the receiver's thread
        self.host, self.port, self.tls = parse_broker(broker)
        self.broker = broker
        topics = [topics] if isinstance(topics, str) else list(topics)
        if not topics:
            raise ValueError("mqtt_stream needs at least one topic filter")
        self.topics = [check_topic_filter(t) for t in topics]
        if isinstance(qos, bool) or qos not in (0, 1, 2):
            raise ValueError(f"MQTT qos must be 0, 1 or 2, got {qos!r}")
        if encoding is not None:
            "".encode(encoding)                     # LookupError for an unknown codec, now
        lo, hi = backoff
        if not 0 < lo <= hi:
            raise ValueError(f"backoff must be (first, largest) seconds with 0 < first <= largest, got {backoff!r}")
        self.qos = qos
        self.client_id = client_id
        self.clean_session = clean_session
        self.encoding = encoding
        self.with_topic = with_topic
        self.username = username
        self.password = password
        self.keepalive = keepalive
        self.backoff = (lo, hi)
        self.max_buffered = max_buffered
        self.connections = 0                        # successful connections so far (reconnects included)
        self.subscribed = threading.Event()         # set once the broker granted every subscription

    _runtime = ("_client", "_cond", "_buffer", "_halt", "_flusher", "subscribed", "session")

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for name in self._runtime:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.subscribed = threading.Event()

    def __repr__(self) -> str:
        return f"MQTTReceiver({self.broker!r}, {self.topics!r}, qos={self.qos})"

    # -- the session -------------------------------------------------------------------------------------
    def _session(self) -> tuple[str, bool]:
        """(client id, clean session) of this start: fixed and persistent when the source is reliable."""
        client_id = self.client_id if self.client_id is not None else (
            self.stable_id() if self.write_ahead_log else None)
        clean = self.clean_session if self.clean_session is not None else (client_id is None or self.qos == 0)
        if not clean and not client_id:
            raise ValueError(f"MQTT receiver of {self.topics}: a persistent session (clean_session=False) needs a "
                             "fixed client id: pass client_id=..., or turn the receiver write-ahead log on "
                             "(spark.streaming.receiver.writeAheadLog.enable) with ssc.checkpoint(dir)")
        return client_id or "", clean

    def on_start(self) -> None:
        self._halt = threading.Event()
        self._cond = threading.Condition()
        self._buffer: list[tuple[Any, int, int]] = []
        self._client = None
        self.subscribed.clear()
        self._flusher = threading.Thread(target=self._flush_safely, daemon=True,
                                         name=f"runnel-mqtt-{self.host}:{self.port}")
        self._flusher.start()
        mqtt = _paho()
        client_id, clean = self._session()
        self.session = (client_id, clean)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                             manual_ack=self.qos > 0)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        client.reconnect_delay_set(self.backoff[0], self.backoff[1])
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.host, self.port, self.keepalive)
        client.loop_start()                         # paho's thread: connects, reconnects with backoff

    def on_stop(self) -> None:
        self._halt.set()
        with self._cond:
            self._cond.notify_all()
        if self._flusher is not threading.current_thread():
            self._flusher.join(_JOIN_TIMEOUT)       # it stores and acknowledges what was buffered
        if self._client is None:                    # on_start failed before the client was made
            return
        self._client.disconnect()
        self._client.loop_stop()
        with self._cond:
            rest, self._buffer = self._buffer, []
        _, clean = self.session
        if rest and clean:
            # arrived after the last flush: the broker forgets a clean session, so store them now
            # (a persistent session gets them again, unacknowledged, at the next connect)
            self.store([r for r, _, _ in rest])

    # -- paho callbacks (on paho's network thread) ------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.report_error(f"MQTT broker {self.broker} refused the connection: {reason_code}")
            return
        self.connections += 1
        client.subscribe([(t, self.qos) for t in self.topics])

    def _on_connect_fail(self, client, userdata) -> None:
        self.report_error(f"cannot connect to MQTT broker {self.broker}; retrying with backoff up to "
                          f"{self.backoff[1]} s")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        if not self._halt.is_set():
            self.report_error(f"lost the connection to MQTT broker {self.broker} ({reason_code}); reconnecting")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [t for t, rc in zip(self.topics, reason_codes) if rc.is_failure]
        if refused:
            self.report_error(f"MQTT broker {self.broker} refused the subscription to {refused}")
        else:
            self.subscribed.set()

    def _on_message(self, client, userdata, msg) -> None:
        payload = msg.payload if self.encoding is None else msg.payload.decode(self.encoding, "replace")
        record = (msg.topic, payload) if self.with_topic else payload
        with self._cond:
            while len(self._buffer) >= self.max_buffered and not self._halt.is_set():
                self._cond.wait(_POLL)              # the store is behind: hold the broker back
            self._buffer.append((record, msg.mid, msg.qos))
            self._cond.notify_all()

    # -- the flusher thread ---------------------------------------------------------------------------------------
    def _flush_safely(self) -> None:
        try:
            while self._flush_once():
                pass
        except ReceiverStoppedError:
            return
        except Exception as e:  # noqa: BLE001 — never die silently: the supervisor restarts us
            self.restart(f"Error storing messages from MQTT broker {self.broker}", e)

    def _flush_once(self) -> bool:
        """Store what is buffered as one block, then acknowledge it; False once halted and drained."""
        with self._cond:
            while not self._buffer and not self._halt.is_set():
                self._cond.wait(_POLL)
            taken, self._buffer = self._buffer, []
            self._cond.notify_all()
        if not taken:
            return False
        self.store([r for r, _, _ in taken])        # with the WAL: durable when it returns
        for _, mid, qos in taken:
            if qos:
                self._client.ack(mid, qos)          # in arrival order, as MQTT requires
        return True


class MQTTInputDStream(ReceiverInputDStream):
    """The stream of an :class:`MQTTReceiver` (named ``mqtt_stream-<n>``)."""

    kind = "mqtt_stream"


def mqtt_stream(ssc, broker: str, topics: str | Sequence[str], qos: int = 1, **options: Any) -> DStream:
    """A stream of the messages published to ``topics`` on an MQTT broker.

    Records are ``(topic, payload)`` pairs, the payload as ``bytes`` (``encoding="utf-8"``
    for ``str``; ``with_topic=False`` for the payload alone). Topic filters may use the
    ``+`` and ``#`` wildcards. With the receiver write-ahead log on
    (``spark.streaming.receiver.writeAheadLog.enable`` and ``ssc.checkpoint(dir)``) and
    ``qos=1``, every message the broker accepted is processed at least once, even if the
    driver is killed: see :mod:`runnel.mqtt`. ``options`` are :class:`MQTTReceiver`'s.

    Examples
    --------
    >>> from runnel import StreamingContext
    >>> ssc = StreamingContext("local", 1)
    >>> temps = mqtt_stream(ssc, "tcp://localhost:1883", "sensors/+/temp", qos=1, encoding="utf-8")
    >>> temps.receiver
    MQTTReceiver('tcp://localhost:1883', ['sensors/+/temp'], qos=1)
    >>> ssc.stop()
    """
    return MQTTInputDStream(ssc, MQTTReceiver(broker, topics, qos, **options))
