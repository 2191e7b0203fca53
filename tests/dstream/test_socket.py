import socket
import threading
import time

import pytest

from runnel import StreamingListener
from runnel.dstream.receivers import SocketReceiver

pytestmark = pytest.mark.network


class ErrorCount(StreamingListener):
    def __init__(self):
        self.errors = []

    def onReceiverError(self, e):  # noqa: N802
        self.errors.append(e.receiverInfo().last_error_message)


def accept(server, timeout=10.0):
    server.settimeout(timeout)
    conn, _ = server.accept()
    return conn


def send_in_chunks(conn, data: bytes, sizes):
    i = 0
    for n in sizes:
        if i >= len(data):
            break
        conn.sendall(data[i:i + n])
        i += n
    conn.sendall(data[i:])


def socket_stream(ssc, port, listener=None):
    if listener is not None:
        ssc.add_streaming_listener(listener)
    stream = ssc.socket_text_stream("127.0.0.1", port)
    stream.receiver.backoff = (0.02, 0.2)          # reconnect fast in tests
    out = []
    stream.foreach_rdd(lambda rdd: out.append(rdd.collect()))
    return stream, out


def test_lines_arrive_exactly_once_across_odd_chunks_and_a_reconnect(inputs_ssc, inputs_poll):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    ssc = inputs_ssc()
    errors = ErrorCount()
    stream, out = socket_stream(ssc, port, errors)
    ssc.start()

    first = [f"line {i} é€" for i in range(500)]
    conn = accept(server)
    payload = "\r\n".join(first[:250]).encode() + b"\r\n" + "\n".join(first[250:]).encode() + b"\n"
    send_in_chunks(conn, payload, [1, 2, 3, 5, 7, 11, 13, 17, 4096])   # split mid-line and mid-character
    inputs_poll(lambda: stream.num_received == 500, "the first 500 lines")
    ssc.run_batches(1)

    server.close()                                 # the server goes away entirely ...
    conn.close()
    inputs_poll(lambda: len(errors.errors) >= 2, "the receiver to report the lost connection")
    server = socket.create_server(("127.0.0.1", port))   # ... and comes back on the same port
    second = [f"second {i}" for i in range(300)]
    conn = accept(server)
    send_in_chunks(conn, ("\n".join(second) + "\n").encode(), [10, 1, 100, 3])
    inputs_poll(lambda: stream.num_received == 800, "the second 300 lines")
    ssc.run_batches(1)
    conn.close()
    server.close()
    ssc.stop(stop_spark_context=False)

    assert out[0] == first
    assert out[1] == second
    assert stream.receiver.connections == 2
    assert "Socket data stream had no more data" in errors.errors
    assert any(e.startswith(f"Error connecting to 127.0.0.1:{port}") for e in errors.errors)


def test_a_partial_line_at_eof_is_delivered(inputs_ssc, inputs_poll):
    with socket.create_server(("127.0.0.1", 0)) as server:
        ssc = inputs_ssc()
        stream, out = socket_stream(ssc, server.getsockname()[1])
        ssc.start()
        conn = accept(server)
        conn.sendall(b"a\r\nb\n\nc\xff\rd\nlast without newline")
        inputs_poll(lambda: stream.num_received == 4, "the complete lines")
        ssc.run_batches(1)
        conn.close()
        inputs_poll(lambda: stream.num_received == 5, "the partial line at EOF")
        ssc.run_batches(1)
        ssc.stop(stop_spark_context=False)
    assert out == [["a", "b", "", "c\ufffd\rd"], ["last without newline"]]


def test_stop_is_prompt_while_the_server_is_silent(inputs_ssc, inputs_poll):
    with socket.create_server(("127.0.0.1", 0)) as server:
        ssc = inputs_ssc()
        stream, out = socket_stream(ssc, server.getsockname()[1])
        ssc.start()
        conn = accept(server)
        conn.sendall(b"only line\nhalf a li")
        inputs_poll(lambda: stream.num_received == 1, "the line")
        began = time.monotonic()
        ssc.stop(stop_spark_context=False, stop_gracefully=True)
        took = time.monotonic() - began
        conn.close()
    assert took < 2.0
    assert [x for b in out for x in b] == ["only line", "half a li"]   # nothing received is dropped
    assert not stream.receiver._thread.is_alive()


def test_no_server_reports_errors_and_keeps_retrying_until_one_appears(inputs_ssc, inputs_poll):
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                                  # nothing listens on this port now
    ssc = inputs_ssc()
    errors = ErrorCount()
    stream, out = socket_stream(ssc, port, errors)
    ssc.start()
    inputs_poll(lambda: len(errors.errors) >= 3, "three failed connection attempts")
    with socket.create_server(("127.0.0.1", port)) as server:
        conn = accept(server)
        conn.sendall(b"finally\n")
        inputs_poll(lambda: stream.num_received == 1, "the line")
        ssc.run_batches(1)
        conn.close()
    ssc.stop(stop_spark_context=False)
    assert out == [["finally"]]


def test_socket_receiver_validates_its_port():
    with pytest.raises(ValueError, match="port"):
        SocketReceiver("localhost", 70000)
    with pytest.raises(ValueError, match="port"):
        SocketReceiver("localhost", "9999")


def test_many_lines_in_big_reads_are_stored_in_chunks(inputs_ssc, inputs_poll):
    n = 50_000
    with socket.create_server(("127.0.0.1", 0)) as server:
        ssc = inputs_ssc()
        stream, out = socket_stream(ssc, server.getsockname()[1])
        calls = []
        receiver = stream.receiver
        original = receiver.store_many
        receiver.store_many = lambda lines: (calls.append(len(lines)), original(lines))
        ssc.start()
        conn = accept(server)
        sender = threading.Thread(target=conn.sendall, args=("".join(f"{i}\n" for i in range(n)).encode(),))
        sender.start()
        inputs_poll(lambda: stream.num_received == n, f"{n} lines")
        sender.join(10)
        ssc.run_batches(1)
        conn.close()
        ssc.stop(stop_spark_context=False)
    assert out[0] == [str(i) for i in range(n)]
    assert len(calls) < n / 100                    # whole reads, not a store call per line
