"""Shared fixtures for the ingestion tests: tiny files written on the fly, and a listener that
records every connection attempt (to prove that parsing touches no network)."""

from __future__ import annotations

import socket
import threading

import pytest

from kgrec.ingest.sources import BuildReport


@pytest.fixture
def report() -> BuildReport:
    return BuildReport()


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a UTF-8 file under tmp_path."""

    def _write(name: str, text: str):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


class ConnectionRecorder:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            # Answer like a server would, so a client that did connect gets a context back.
            body = b'{"@context": {"ex": "http://example.org/"}}'
            try:
                conn.recv(4096)
                conn.sendall(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/ld+json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
            finally:
                conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.close()


@pytest.fixture
def listener():
    recorder = ConnectionRecorder()
    yield recorder
    recorder.close()
