"""The disks and network interfaces the dashboards leave out, in each regex dialect they are used in.

There is one list of each, the alert rules' (``perfanalysis.alerting.catalogue``: ``DISK_IGNORED``
and ``NIC_IGNORED``), written for PromQL, which anchors a regex at both ends. Here they become:

* InfluxQL conditions (the Fleet dashboard's disk and network columns): a regex literal there
  matches anywhere in the value, so the list is anchored, ``/^( )$/``;
* Grafana variable regexes (the host dashboards' disk and interface lists), JavaScript: a
  negative lookahead keeps what the list does not name, and its groups are made non-capturing,
  because Grafana shows a regex's first capturing group instead of the value when there is one
  (inside a lookahead it is undefined for every value kept).

A list may use only the syntax all three engines (and Python's ``re``, which the tests use) read
alike; anything else is refused where the dashboards are built.
"""

from __future__ import annotations

import re
import string

from perfanalysis.alerting.catalogue import DISK_IGNORED, NIC_IGNORED

PORTABLE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_-.*+|()[]")


def portable(name: str, pattern: str) -> str:
    """``pattern`` itself, once it is known to mean the same in RE2, JavaScript and Python."""
    unportable = sorted(set(pattern) - PORTABLE_CHARACTERS)
    if unportable:
        raise ValueError(
            f"{name} = {pattern!r} uses {' '.join(unportable)}: a list the dashboards share with "
            "the alert rules may use only letters, digits and _ - . * + | ( ) [ ], the regex "
            "syntax PromQL, InfluxQL and Grafana's JavaScript read alike"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{name} = {pattern!r} is not a regex: {exc}") from None
    return pattern


def non_capturing(pattern: str) -> str:
    """``pattern`` with every group outside a bracket expression made ``(?:...)``."""
    out, in_brackets = [], False
    for char in pattern:
        if char == "[":
            in_brackets = True
        elif char == "]":
            in_brackets = False
        out.append("(?:" if char == "(" and not in_brackets else char)
    return "".join(out)


def influx_excluding(name: str, pattern: str) -> str:
    """An InfluxQL condition keeping the ``device`` values ``pattern`` does not match whole."""
    return f'"device" !~ /^({portable(name, pattern)})$/'


def variable_excluding(name: str, pattern: str) -> str:
    """A Grafana variable regex keeping the values ``pattern`` does not match whole."""
    return f"/^(?!(?:{non_capturing(portable(name, pattern))})$).+$/"


PHYSICAL_DISK = influx_excluding("DISK_IGNORED", DISK_IGNORED)
PHYSICAL_NIC = influx_excluding("NIC_IGNORED", NIC_IGNORED)
DISK_VARIABLE_REGEX = variable_excluding("DISK_IGNORED", DISK_IGNORED)
NIC_VARIABLE_REGEX = variable_excluding("NIC_IGNORED", NIC_IGNORED)
