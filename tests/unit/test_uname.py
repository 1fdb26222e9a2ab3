"""uname collector: uname(2) labels, with the NIS domain name read under --path.procfs."""

from __future__ import annotations

import os

from tests.unit.promtext import parse_samples, scrape, series, tree


def uname_labels(kernel: str) -> dict[str, str]:
    ((labels, one),) = series(
        parse_samples(scrape(tree(kernel), "uname")), "node_uname_info"
    ).items()
    assert one == 1
    return dict(labels)


def test_domainname_comes_from_the_fake_procfs() -> None:
    uts = os.uname()
    assert uname_labels("4.19") == {
        "sysname": uts.sysname,
        "release": uts.release,
        "version": uts.version,
        "machine": uts.machine,
        "nodename": uts.nodename,
        "domainname": "corp.example",
    }
    assert uname_labels("3.10")["domainname"] == "(none)"
