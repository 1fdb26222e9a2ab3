"""/proc/cpuinfo as node_exporter reads it (prometheus/procfs' x86 parser), for --collector.cpu.info.

A record starts at each ``processor`` line; a line's key is what precedes the first ``": "``
(trimmed) and its value what follows, untrimmed, so labels carry the kernel's text as
node_exporter's do. arm64 kernels name the flags ``Features``; they are read as flags too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# /proc/cpuinfo key -> CPUInfo attribute
TEXT_FIELDS = {
    "vendor_id": "vendor",
    "vendor": "vendor",
    "cpu family": "family",
    "model": "model",
    "model name": "model_name",
    "stepping": "stepping",
    "microcode": "microcode",
    "cache size": "cachesize",
    "physical id": "package",
    "core id": "core",
}
LIST_FIELDS = {"flags": "flags", "Features": "flags", "bugs": "bugs"}


class CPUInfoError(ValueError):
    """/proc/cpuinfo is not in the format node_exporter reads (it fails the collector too)."""


@dataclass
class CPUInfo:
    processor: str
    vendor: str = ""
    family: str = ""
    model: str = ""
    model_name: str = ""
    stepping: str = ""
    microcode: str = ""
    cachesize: str = ""
    package: str = ""
    core: str = ""
    flags: list[str] = field(default_factory=list)
    bugs: list[str] = field(default_factory=list)


def parse_cpuinfo(text: str) -> list[CPUInfo]:
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines or not lines[0].startswith("processor") or ":" not in lines[0]:
        first = lines[0] if lines else ""
        raise CPUInfoError(f"invalid cpuinfo file: first line {first!r} is not 'processor : N'")
    cpus: list[CPUInfo] = []
    for line in lines:
        key, separator, value = line.partition(": ")
        key = key.strip()
        if key == "processor":
            cpus.append(CPUInfo(_processor_number(value if separator else "")))
        elif not separator:
            continue
        elif key in TEXT_FIELDS:
            setattr(cpus[-1], TEXT_FIELDS[key], value)
        elif key in LIST_FIELDS:
            setattr(cpus[-1], LIST_FIELDS[key], value.split())
    return cpus


def _processor_number(text: str) -> str:
    """The ``cpu`` label: the number as Go's ParseUint(text, 0, 32) reads it, in decimal."""
    try:
        number = int(text.strip(), 0)
    except ValueError:
        raise CPUInfoError(f"invalid cpuinfo file: processor number {text!r}") from None
    if not 0 <= number < 2**32:
        raise CPUInfoError(f"invalid cpuinfo file: processor number {text!r} out of range")
    return str(number)
