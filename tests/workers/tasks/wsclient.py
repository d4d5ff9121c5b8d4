"""A minimal blocking websocket client (RFC 6455, text frames) for tests against a live server.

No client library is a dependency of the project; the pipeline test needs only: handshake with
a cookie and an Origin, read server text frames as JSON, close.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class WebSocket:
    """One connection; :meth:`connect` raises ConnectionRefusedError when the handshake is refused."""

    def __init__(self, sock: socket.socket, buffered: bytes) -> None:
        self.sock = sock
        self.buf = buffered

    @classmethod
    def connect(cls, port: int, path: str, cookie: str = "", timeout: float = 10) -> WebSocket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Origin: http://127.0.0.1",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            sock.close()
            raise ConnectionRefusedError(status.decode(errors="replace"))
        return cls(sock, rest)

    def _read(self, n: int, deadline: float) -> bytes | None:
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def receive_json(self, timeout: float) -> Any:
        """The next text message as JSON, or None when nothing arrives within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            head = self._read(2, deadline)
            if head is None:
                return None
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2, deadline + 5) or b"\0\0")[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8, deadline + 5) or b"\0" * 8)[0]
            payload = self._read(length, deadline + 5) or b""
            if opcode == 0x8:
                raise ConnectionError("server closed the websocket")
            if opcode == 0x1:
                return json.loads(payload.decode())

    def close(self) -> None:
        try:
            mask = os.urandom(4)
            self.sock.sendall(bytes([0x88, 0x80]) + mask)
        except OSError:
            pass
        self.sock.close()
