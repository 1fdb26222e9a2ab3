"""Reading a request body within limits, as sent and after gzip decompression.

A small gzip body can decompress to gigabytes (a "zip bomb"), so decompression stops as soon as
the output passes its own limit instead of inflating first and measuring afterwards.
"""

from __future__ import annotations

import zlib
from typing import IO

GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw zlib
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int, decompressed: bool) -> None:
        self.limit = limit
        self.decompressed = decompressed
        what = "decompressed body" if decompressed else "request body"
        super().__init__(f"{what} larger than {limit} bytes; split the batch")


class BadBody(Exception):
    """The body cannot be decoded (bad gzip); the client should not send it again."""


class UnsupportedEncoding(Exception):
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        super().__init__(f"Content-Encoding {encoding!r} is not supported; use gzip or none")


def read_limited(stream: IO[bytes], content_length: int | None, limit: int) -> bytes:
    """The body: its declared length, or at most ``limit`` bytes of ``stream`` when it has none
    (chunked); BodyTooLarge as soon as there are more."""
    if content_length is not None and content_length > limit:
        raise BodyTooLarge(limit, decompressed=False)
    if content_length is not None:
        return _read_exactly(stream, content_length)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit, decompressed=False)
        chunks.append(chunk)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, asked for in one read (the server then reads the socket in large pieces
    and copies the body once); BadBody if the stream ends first."""
    data = stream.read(size)
    if len(data) == size:
        return data
    chunks = [data]
    received = len(data)
    while received < size:
        more = stream.read(size - received)
        if not more:
            raise BadBody(f"the body ended after {received} of the {size} bytes announced")
        chunks.append(more)
        received += len(more)
    return b"".join(chunks)


def decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body per its Content-Encoding (``gzip`` or none), at most ``limit`` bytes."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    raise UnsupportedEncoding(content_encoding)


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress every gzip member of ``data`` (concatenated members are valid gzip)."""
    chunks: list[bytes] = []
    total = 0
    size = len(data)
    while data:
        start = size - len(data)  # where this member begins
        inflater = zlib.decompressobj(GZIP_WBITS)
        try:
            while True:
                chunk = inflater.decompress(data, limit + 1 - total)
                total += len(chunk)
                if total > limit:
                    raise BodyTooLarge(limit, decompressed=True)
                chunks.append(chunk)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    break
                if not chunk and not data:
                    raise BadBody(f"gzip body is truncated: {_member(start, size)}")
        except zlib.error as exc:
            raise BadBody(f"gzip body is corrupt: {_member(start, size)}: {exc}") from None
        data = inflater.unused_data
    return b"".join(chunks)


def _member(start: int, size: int) -> str:
    if start == 0:
        return f"the stream of {size} bytes"
    return f"the {size - start} bytes after the end of the gzip stream at byte {start}"
