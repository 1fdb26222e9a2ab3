"""Which Grafana orgs sync manages, and for which tenant instance.

Grafana keeps no field of ours on an org, so sync marks a tenant's org through the InfluxDB data
source it provisions there: ``jsonData.perfanalysisTenant`` holds the tenant's slug and creation
time (an ``Instance``). A tenant deleted and created again under the same slug is another instance:
before giving a tenant the org of its name, sync reads the marker and refuses an org marked for
another instance, so a new customer never lands among an earlier customer's users, dashboards and
alert contact point. An org with no marker at all (made by hand, or by a sync from before the
marker) is adopted and marked.

An org whose marker names no tenant of the admin database is an orphan: every sync reports it and
``perfanalysis grafana prune-orphans`` deletes it. The main org (id 1) and orgs without a marker
are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from perfanalysis.grafana.client import Grafana, SyncError
from perfanalysis.grafana.tenantsource import Instance

MARKER = "perfanalysisTenant"
MAIN_ORG = 1
PAGE_SIZE = 1000  # GET /api/orgs's own default and maximum page
PRUNE = "perfanalysis grafana prune-orphans"


class OrgRefused(Exception):
    """The org named after a tenant is not that tenant's to take; says whose it is and what to do."""


class PruneRefused(Exception):
    """Pruning would delete every org sync manages, and --force was not given."""


def marker(instance: Instance) -> dict[str, str]:
    return {"slug": instance.slug, "createdAt": instance.created}


def read_marker(value: Any) -> Instance | None:
    """The instance a marker names; None for a value sync never writes."""
    if not isinstance(value, dict):
        return None
    slug, created = value.get("slug"), value.get("createdAt")
    if isinstance(slug, str) and slug and isinstance(created, str) and created:
        return Instance(slug, created)
    return None


def names(instances: Iterable[Instance]) -> str:
    return " and ".join(str(i) for i in sorted(instances))


@dataclass(frozen=True)
class Org:
    """A Grafana org as sync found it, with the tenant instances its data sources are marked for."""

    id: int
    name: str
    owners: frozenset[Instance] = frozenset()
    bad_markers: tuple[str, ...] = ()  # uids of data sources whose marker names no instance
    error: str | None = None  # its data sources could not be read

    def __str__(self) -> str:
        return f"org {self.id} {self.name!r}"

    @property
    def marked(self) -> bool:
        return bool(self.owners or self.bad_markers)

    def orphaned(self, instances: frozenset[Instance]) -> bool:
        """Marked, readable, and for no tenant of the admin database."""
        return (
            self.error is None
            and not self.bad_markers
            and bool(self.owners)
            and not self.owners & instances
        )

    def orphan_warning(self) -> str:
        return (
            f"{self} is an orphan: it belongs to {names(self.owners)}, which no longer "
            "exists, yet its users, dashboards and alert rules remain and its alerts still go to "
            f"its contact point; check it, then delete it with {PRUNE}"
        )

    def doubt(self) -> str | None:
        """Why sync cannot tell whose this org is, if it cannot."""
        if self.error is not None:
            return f"cannot read the data sources of {self}, so it was left alone: {self.error}"
        if self.bad_markers:
            return (
                f"{self} has a data source whose jsonData.{MARKER} names no tenant instance "
                f"({', '.join(self.bad_markers)}), so it was left alone: correct that marker or "
                "delete that data source in Grafana"
            )
        return None


class Survey:
    """Each org's markers, read at most once a run (``GET /api/datasources`` in the org)."""

    def __init__(self, grafana: Grafana) -> None:
        self.grafana = grafana
        self._seen: dict[int, Org] = {}

    def org(self, org_id: int, name: str) -> Org:
        if org_id not in self._seen:
            self._seen[org_id] = self._inspect(org_id, name)
        return self._seen[org_id]

    def all(self) -> list[Org]:
        """Every org but the main one, by id."""
        return [self.org(i, name) for i, name in list_orgs(self.grafana) if i != MAIN_ORG]

    def _inspect(self, org_id: int, name: str) -> Org:
        try:
            sources = self.grafana.in_org(org_id).get("/datasources") or []
        except SyncError as exc:
            if exc.status not in (401, 403):  # not a member of that org; anything else is fatal
                raise
            return Org(org_id, name, error=str(exc))
        owners: set[Instance] = set()
        bad: list[str] = []
        for source in sources:
            json_data = source.get("jsonData") if isinstance(source, dict) else None
            if not isinstance(json_data, dict) or MARKER not in json_data:
                continue
            instance = read_marker(json_data[MARKER])
            if instance is None:
                bad.append(str(source.get("uid")))
            else:
                owners.add(instance)
        return Org(org_id, name, frozenset(owners), tuple(bad))


def list_orgs(grafana: Grafana) -> list[tuple[int, str]]:
    """(id, name) of every org, by id (``GET /api/orgs``, a page at a time)."""
    found: dict[int, str] = {}
    page = 1
    while True:
        batch = grafana.get("/orgs", {"perpage": str(PAGE_SIZE), "page": str(page)})
        if not isinstance(batch, list) or not all(
            isinstance(o, dict) and "id" in o and "name" in o for o in batch
        ):
            raise SyncError(f"Grafana at {grafana.url}: GET /api/orgs answered no list of orgs")
        new = {int(o["id"]): str(o["name"]) for o in batch if int(o["id"]) not in found}
        found.update(new)
        if len(batch) < PAGE_SIZE or not new:
            return sorted(found.items())
        page += 1


def claim(survey: Survey, org_id: int, name: str, tenant: Instance,
          instances: frozenset[Instance]) -> str:  # fmt: skip
    """How ``tenant`` takes the existing org of its name: "unchanged" when the org is marked for
    it, "adopted" when it carries no marker; OrgRefused when it is another's or sync cannot tell."""
    if org_id == MAIN_ORG:
        raise OrgRefused(
            f"Grafana's main org (id {MAIN_ORG}) is named {name!r}, the tenant's slug, and sync "
            "never gives the main org to a tenant: rename it in Grafana (Administration > "
            "Organizations), then sync again"
        )
    org = survey.org(org_id, name)
    doubt = org.doubt()
    if doubt:
        raise OrgRefused(f"{doubt}; then sync again")
    others = org.owners - {tenant}
    if not others:
        return "unchanged" if org.owners else "adopted (it carried no sync marker)"
    living = others & instances
    if living:
        raise OrgRefused(
            f"Grafana {org} belongs to {names(living)}, which still exists, so it was left "
            f"alone: was the org renamed in Grafana? Give it back its tenant's name, or another "
            "name, then sync again"
        )
    raise OrgRefused(
        f"Grafana {org} belongs to {names(others)}, which no longer exists, so it was left "
        "alone: that tenant's users, dashboards and alert contact point are still in it. Delete "
        f"it with {PRUNE} (or rename it in Grafana to keep it), then sync again to give "
        f"{tenant} an org of its own"
    )


def to_prune(orgs: list[Org], instances: frozenset[Instance], database: str,
             force: bool) -> list[Org]:  # fmt: skip
    """The orphans among ``orgs``. PruneRefused, unless ``force``, when they are every org sync
    manages: an admin database that is empty, or not this Grafana's (a wrong --database-url),
    must not wipe every tenant's org."""
    orphans = [o for o in orgs if o.orphaned(instances)]
    if not orphans or force or any(o.owners & instances for o in orgs):
        return orphans
    listed = ", ".join(str(o) for o in orphans)
    if not instances:
        raise PruneRefused(
            f"the admin database {database} has no tenants, so every org sync manages would be "
            f"deleted ({listed}); if every tenant really is gone, run again with --force"
        )
    raise PruneRefused(
        f"none of the {len(instances)} tenant(s) in the admin database {database} owns an org "
        f"sync manages, so every one would be deleted ({listed}): is --database-url this "
        "Grafana's admin database? If it is (every tenant with an org was deleted), run again "
        "with --force"
    )


def delete(grafana: Grafana, org: Org) -> None:
    # acting in the main org: Grafana refuses to delete the org a request acts in
    grafana.in_org(MAIN_ORG).send("DELETE", f"/orgs/{org.id}", None)
