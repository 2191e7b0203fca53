"""A Debian mosquitto broker for the MQTT tests: its own loopback port, config and persistence directory.

``find_mosquitto()`` returns the binary's path, installing Debian's
``mosquitto`` package when it may (root, under CI: ``apt-get install``,
once per machine) and otherwise returning None; ``mosquitto_or_skip()``
then skips the test, saying why — except under CI, where a broker that
cannot be had fails it. ``tests/test_readme.py`` uses these too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

START_TIMEOUT = 20.0


def find_mosquitto() -> str | None:
    """Path of mosquitto; installed with apt-get under CI as root."""
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if path is None and os.environ.get("CI") and hasattr(os, "geteuid") and os.geteuid() == 0 \
            and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "mosquitto"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
        path = shutil.which("mosquitto", path="/usr/sbin:/sbin:/usr/bin")
    return path


def mosquitto_or_skip() -> str:
    """mosquitto's path for a test; skips where it cannot be had, but fails under CI (``CI`` set)."""
    import pytest
    try:
        path = find_mosquitto()
    except RuntimeError as e:
        pytest.fail(f"cannot install mosquitto: {e}")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no mosquitto under CI, and it cannot be installed here (needs root and apt-get)")
        pytest.skip("no mosquitto broker on this machine (install Debian's 'mosquitto'; under CI as root the "
                    "tests install it themselves)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One broker process; ``stop()`` and ``start()`` again keep its port and persisted sessions."""

    def __init__(self, binary: str, workdir: str, *, max_inflight: int = 20):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        os.makedirs(workdir, exist_ok=True)
        self.config = os.path.join(workdir, "mosquitto.conf")
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {workdir}/", "max_queued_messages 100000",
                 f"max_inflight_messages {max_inflight}", f"log_dest file {workdir}/mosquitto.log",
                 "log_type error", "log_type warning", "log_type notice"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")            # else it drops to the 'mosquitto' user, who cannot write here
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([self.binary, "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {self.proc.stderr.read()[-2000:]!r}"
                                   f"\n{self.log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT} s")
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its sessions to disk), bounded; SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stderr.close()

    def log(self) -> str:
        try:
            with open(os.path.join(self.workdir, "mosquitto.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


def publish(url: str, messages: list[tuple[str, bytes | str]], qos: int = 1, timeout: float = 30.0,
            client_id: str = "") -> None:
    """Publish ``(topic, payload)`` messages at ``qos``; returns once the broker accepted every one."""
    import paho.mqtt.client as mqtt

    host, port = url.rsplit("/", 1)[1].split(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, int(port))
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError(f"the broker did not accept message {info.mid} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
