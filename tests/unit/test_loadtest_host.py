"""Host facts: CPU model on x86, arm64 and others, memory, and this host's own facts."""

from __future__ import annotations

import os

import pytest

from exporter.loadtest.cloud import CloudFacts
from exporter.loadtest.host import cpu_model, gather, memory_bytes

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9J14 96-Core Processor
siblings\t: 2

processor\t: 1
model name\t: AMD EPYC 9J14 96-Core Processor
"""
GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""
POWER9 = "processor\t: 0\ncpu\t\t: POWER9 (raw), altivec supported\nclock\t\t: 2300.000000MHz\n"


@pytest.mark.parametrize(
    ("text", "model"),
    [
        (X86, "AMD EPYC 9J14 96-Core Processor"),
        (GRAVITON2, "ARM Neoverse-N1"),
        (GRAVITON2.replace("0xd0c", "0xfff"), "ARM implementer 0x41 part 0xfff"),
        (POWER9, "POWER9 (raw), altivec supported"),
        ("processor : 0\n", "riscv64"),
    ],
)
def test_cpu_model(text: str, model: str) -> None:
    assert cpu_model(text, "riscv64") == model


def test_memory_from_meminfo() -> None:
    text = "MemTotal:       24683656 kB\nMemFree:        1000 kB\n"
    assert memory_bytes(text) == 24683656 * 1024
    with pytest.raises(ValueError, match="MemTotal"):
        memory_bytes("MemFree: 1 kB\n")


def test_this_host() -> None:
    facts = gather(CloudFacts("oci", "us-phoenix-1", None))
    document = facts.to_json()
    assert document["vcpus"] == os.cpu_count()
    assert document["memory_bytes"] > 0
    assert document["kernel"] == os.uname().release
    assert document["cpu_model"]
    assert document["cloud_provider"] == "oci"
    assert document["instance_type"] is None
