"""Facts about the host a load test ran on: CPU model, vCPUs, memory, kernel, hostname, cloud."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from exporter.loadtest.cloud import CloudFacts

# aarch64 /proc/cpuinfo has no model name: (CPU implementer, CPU part) -> core
ARM_CORES = {
    (0x41, 0xD08): "ARM Cortex-A72",
    (0x41, 0xD0B): "ARM Cortex-A76",
    (0x41, 0xD0C): "ARM Neoverse-N1",
    (0x41, 0xD40): "ARM Neoverse-V1",
    (0x41, 0xD49): "ARM Neoverse-N2",
    (0x41, 0xD4F): "ARM Neoverse-V2",
    (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1A",
}
MODEL_KEYS = ("model name", "cpu model", "cpu")  # x86, MIPS, POWER


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    cpu_model: str
    vcpus: int
    memory_bytes: int
    kernel: str
    cloud: CloudFacts

    def to_json(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "cpu_model": self.cpu_model,
            "vcpus": self.vcpus,
            "memory_bytes": self.memory_bytes,
            "kernel": self.kernel,
            "cloud_provider": self.cloud.provider,
            "region": self.cloud.region,
            "instance_type": self.cloud.instance_type,
        }


def _first_fields(cpuinfo: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() not in fields and value.strip():
            fields[key.strip()] = value.strip()
    return fields


def cpu_model(cpuinfo: str, machine: str) -> str:
    fields = _first_fields(cpuinfo)
    for key in MODEL_KEYS:
        if key in fields:
            return " ".join(fields[key].split())
    try:
        implementer = int(fields["CPU implementer"], 16)
        part = int(fields["CPU part"], 16)
    except (KeyError, ValueError):
        return fields.get("Hardware") or machine
    return ARM_CORES.get((implementer, part), f"ARM implementer {implementer:#x} part {part:#x}")


def memory_bytes(meminfo: str) -> int:
    for line in meminfo.splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal":
            number, _, unit = value.strip().partition(" ")
            return int(number) * (1024 if unit.strip() == "kB" else 1)
    raise ValueError("no MemTotal in /proc/meminfo")


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def gather(cloud: CloudFacts, procfs: str = "/proc") -> HostFacts:
    uname = os.uname()
    return HostFacts(
        hostname=socket.gethostname() or uname.nodename,
        cpu_model=cpu_model(_read(os.path.join(procfs, "cpuinfo")), uname.machine),
        vcpus=os.cpu_count() or 1,
        memory_bytes=memory_bytes(_read(os.path.join(procfs, "meminfo"))),
        kernel=uname.release,
        cloud=cloud,
    )
