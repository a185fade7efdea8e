"""A network link the test controls: a TCP proxy on loopback, as between an agent on another
host and the service's Redis or database. `cut()` drops every live connection and refuses new
ones (the listening port stays bound but each new connection is closed at once, as a
firewall's reject would); `restore()` lets connections through again.

Threads, not asyncio: the test's own code is synchronous. Every loop is bounded: the accept
loop and the pumps wake at least every 0.2 s and end when the proxy closes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

LOOPBACK = "127.0.0.1"


class LinkProxy:
    def __init__(self, target_host: str, target_port: int):
        if target_host not in (LOOPBACK, "localhost"):
            raise ValueError("the test link only proxies to loopback")
        self.target = (LOOPBACK, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LOOPBACK, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._marked: set[tuple[socket.socket, socket.socket]] = set()  # sent `mark`
        self.mark: bytes | None = None
        self.refused = 0  # connections refused while the link was cut
        self._thread = threading.Thread(target=self._accept, name=f"link-{self.port}", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, url: str) -> tuple[LinkProxy, str]:
        """A proxy in front of the server of `url`, and the same URL through the proxy."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname, parts.port or _default_port(parts.scheme))
        netloc = f"{LOOPBACK}:{proxy.port}"
        if parts.username:
            auth = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{auth}@{netloc}"
        return proxy, urlunsplit(parts._replace(netloc=netloc))

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def cut(self, first_marked: float = 0.0) -> None:
        """Drop every live connection and refuse new ones until `restore()`. With
        `first_marked` seconds, the connections whose client sent `mark` are dropped that long
        before the others: on a failing link connections do not all break at the same
        instant, and which one a client notices first decides what it goes through."""
        self._up.clear()
        with self._lock:
            pairs, self._pairs = list(self._pairs), set()
            marked, self._marked = [p for p in pairs if p in self._marked], set()
        if first_marked and marked:
            for pair in marked:
                _close(*pair)
            time.sleep(first_marked)
        for pair in pairs:
            _close(*pair)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._thread.join(timeout=5)
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._up.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        client, upstream = pair
        other = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set() and self._up.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client and self.mark and self.mark in data:
                        with self._lock:
                            self._marked.add(pair)
                    other[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._pairs.discard(pair)
                self._marked.discard(pair)
            _close(client, upstream)


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a refused connection looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    _close(sock)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


def _default_port(scheme: str) -> int:
    return {"redis": 6379, "postgresql": 5432}.get(scheme.split("+")[0], 0)
