"""The PySpark network word count runs unchanged but for its imports, against a real socket server."""

import collections
import importlib.util
import pathlib
import socket
import threading

import pytest

_spec = importlib.util.spec_from_file_location(
    "pyspark_network_wordcount", pathlib.Path(__file__).with_name("pyspark_network_wordcount.py"))
program = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(program)

LINES = ["to be or not to be", "that is the question", "whether tis nobler in the mind to suffer",
         "the slings and arrows of outrageous fortune", "ünïcode wörds to be"] * 40


def serve_once(lines: list[str], ready: threading.Event, port_box: list, done: threading.Event):
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port_box.append(srv.getsockname()[1])
        ready.set()
        srv.settimeout(30)
        conn, _ = srv.accept()
        with conn:
            payload = "".join(line + "\n" for line in lines).encode()
            # odd chunk sizes split lines and multi-byte characters across reads
            for i in range(0, len(payload), 333):
                conn.sendall(payload[i:i + 333])
            done.wait(30)


@pytest.mark.network
@pytest.mark.parametrize("master", ["local", "local[2]"])
def test_ported_network_wordcount_counts_every_word(master):
    ready, done = threading.Event(), threading.Event()
    port_box: list = []
    server = threading.Thread(target=serve_once, args=(LINES, ready, port_box, done), daemon=True)
    server.start()
    assert ready.wait(10)
    sink: list = []
    try:
        program.run("127.0.0.1", port_box[0], 3.0, sink, master=master)
    finally:
        done.set()
        server.join(10)
    got = collections.Counter()
    for batch in sink:
        for word, n in batch:
            assert isinstance(word, str) and type(n) is int
            got[word] += n
    expected = collections.Counter(w for line in LINES for w in line.split(" "))
    assert got == expected
