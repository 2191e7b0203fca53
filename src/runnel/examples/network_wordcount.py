"""Network word count: the Spark Streaming guide's first example, on runnel.

Counts the words of lines arriving on a TCP socket, printing the counts of
every one-second batch. With no ``--port`` it starts a built-in loopback
server that sends generated text, so nothing needs installing::

    python -m runnel.examples.network_wordcount              # built-in source, 5 s
    python -m runnel.examples.network_wordcount --seconds 10 --master "local[2]"
    nc -lk 9999 & python -m runnel.examples.network_wordcount --port 9999
"""

from __future__ import annotations

import argparse

from runnel import StreamingContext
from runnel.examples.line_server import LineServer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--master", default="local[2]", help='"local", "local[N]" or "local[*]" (default local[2])')
    p.add_argument("--seconds", type=float, default=5.0, help="how long to run (default 5)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="read from this server instead of the built-in one")
    p.add_argument("--rate", type=int, default=2000, help="lines per second of the built-in source")
    args = p.parse_args(argv)

    server = None
    port = args.port
    if port is None:
        server = LineServer(lines_per_second=args.rate).start()
        port = server.port
        print(f"runnel: built-in line server on {args.host}:{port}, {args.rate} lines/s")

    ssc = StreamingContext(args.master, 1)
    lines = ssc.socket_text_stream(args.host, port)
    counts = (lines.flat_map(lambda line: line.split(" "))
                   .map(lambda word: (word, 1))
                   .reduce_by_key(lambda a, b: a + b))
    counts.pprint()
    ssc.start()
    try:
        ssc.await_termination_or_timeout(args.seconds)
    finally:
        ssc.stop(stop_spark_context=True, stop_gracefully=True)
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
