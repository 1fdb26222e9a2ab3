"""The work unit ``pa-mem4m-v1``: one byte-substitution pass over a 4 MiB buffer.

The original perfcpumeasure unit is one pass over 512K uint64 (4 MiB) with an arithmetic spin and a
read-modify-write per element. A per-element loop in Python would take seconds, so this unit does the
per-element work in one C loop of CPython itself:

    buffer[:] = buffer.translate(TABLE)

- ``buffer`` is a 4 MiB ``bytearray`` (4,194,304 bytes, 65,536 cache lines of 64 B), filled once
  from SHAKE-128 of ``b"pa-mem4m-v1 buffer"``.
- ``TABLE`` is a fixed permutation of the 256 byte values: the values ordered by
  SHA-256(``b"pa-mem4m-v1 sbox <value>"``).
- One unit reads every byte, substitutes it through the table into a new 4 MiB object and copies
  that back: every cache line is read twice and written twice, and every byte goes through a
  table lookup (the "spin"). It is deterministic: after n units byte i is TABLE applied n times to
  its initial value, so the CRC-32 of the buffer after n units is the same on every machine.
- It runs only CPython's own loops (``bytes.translate``, slice assignment): no zlib, hashlib or
  OpenSSL code whose speed depends on CPU-specific paths (SHA extensions, PCLMUL/SIMD CRC in
  zlib-ng), so a unit is the same work on every host. The checksum uses zlib but is not timed.

On the 2-vCPU AMD EPYC development VM one unit takes about 3-4 ms of CPU (roughly 250-300 units
per second per core). A new definition must take a new name (pa-mem4m-v2, ...): results are only
comparable between runs of the same unit.
"""

from __future__ import annotations

import hashlib
import zlib

UNIT_NAME = "pa-mem4m-v1"
BUFFER_BYTES = 4 * 1024 * 1024
_SEED = UNIT_NAME.encode("ascii")


def initial_buffer() -> bytearray:
    return bytearray(hashlib.shake_128(_SEED + b" buffer").digest(BUFFER_BYTES))


def substitution_table() -> bytes:
    """A fixed permutation of 0..255: the byte values ordered by a hash of each."""

    def rank(value: int) -> bytes:
        return hashlib.sha256(_SEED + b" sbox " + str(value).encode("ascii")).digest()

    order: list[int] = sorted(range(256), key=rank)
    return bytes(order)


class WorkUnit:
    """The buffer and table of one worker; ``run()`` does one unit."""

    def __init__(self) -> None:
        self.buffer = initial_buffer()
        self.table = substitution_table()
        self.completed = 0

    def run(self) -> None:
        self.buffer[:] = self.buffer.translate(self.table)
        self.completed += 1

    def checksum(self) -> int:
        """CRC-32 of the buffer: depends only on how many units ran."""
        return zlib.crc32(self.buffer)
