"""A loopback HTTP server that answers with scripted bytes, for tests of HTTP clients."""

from __future__ import annotations

import re
import socket
import ssl
import threading


class ScriptedHTTP:
    """Answers each request with the next of ``answers`` (the bytes, and whether to close the
    connection after them), on as many connections as it takes, until none is left.

    ``trickle`` sends answers a byte at a time; ``tls`` serves HTTPS (a client that refuses the
    certificate leaves the answers for the next connection). ``requests`` holds each request as
    received, ``connections`` counts them, and ``closed`` is set once the server closed one.
    """

    def __init__(
        self,
        answers: list[tuple[bytes, bool]],
        trickle: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answers = answers
        self.trickle = trickle
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed by close()
                return
            self.connections += 1
            if self.tls is not None:
                try:
                    connection = self.tls.wrap_socket(connection, server_side=True)
                except OSError:  # the client refused the certificate
                    connection.close()
                    continue
            with connection:
                while self.answers:
                    request = _read_request(connection)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer, close = self.answers.pop(0)
                    if self.trickle:
                        for byte in answer:
                            connection.sendall(bytes([byte]))
                    else:
                        connection.sendall(answer)
                    if close:
                        break
            self.closed.set()

    def close(self) -> None:
        self.listener.close()


def _read_request(connection: socket.socket) -> bytes | None:
    """One request, head and body (by its Content-Length, none without); None at the end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(1 << 20)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"Content-Length: ([0-9]+)", head, re.IGNORECASE)
    length = int(found[1]) if found else 0
    while len(body) < length:
        body += connection.recv(1 << 20)
    return head + b"\r\n\r\n" + body
