"""For tests and benchmarks only (the service never imports this): ingest under gunicorn as a
child process stopped by PID, and tenants with collector keys made through the tenants services.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from perfanalysis.testing.servers import InfluxDB, OwnComponent, ServerProcess
from tenants.access import system_actor
from tenants.collectors import register_collector
from tenants.crypto import CredentialHasher, Vault
from tenants.keys import issue_key
from tenants.models import HOST_TAG_PINNED, Tenant
from tenants.tenancy import NoStorage, Storage, create_tenant


class IngestProcess(OwnComponent, ServerProcess):
    """``python -m ingest.main`` (what ``perfanalysis ingest`` runs) on a free loopback port.

    ``env`` adds PERFANALYSIS_INGEST_* variables (and others) to this process's environment.
    """

    ready_path = "/ping"
    ready_statuses = frozenset({204})

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        env: Mapping[str, str],
        args: Sequence[str] = (),
    ) -> None:
        super().__init__(base_dir)
        self.env = dict(env)
        self.args = list(args)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ingest.main",
            f"--web.listen-address={self.address}",
            *self.args,
        ]


def ingest_environment(
    secret: str,
    database_url: str,
    influxdb: InfluxDB,
    metrics_dir: str | os.PathLike[str],
    **more: str,
) -> dict[str, str]:
    """IngestProcess's environment: one worker writing to ``influxdb`` as its admin, keys from
    ``database_url``; ``more`` adds settings by name (``WEB_WORKERS="2"``)."""
    return {
        "PERFANALYSIS_INGEST_SECRET_KEY": secret,
        "PERFANALYSIS_INGEST_DATABASE_URL": database_url,
        "PERFANALYSIS_INGEST_STORAGE_URL": influxdb.url,
        "PERFANALYSIS_INGEST_STORAGE_USERNAME": influxdb.admin_user,
        "PERFANALYSIS_INGEST_STORAGE_PASSWORD": influxdb.admin_password,
        "PERFANALYSIS_INGEST_WEB_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **{f"PERFANALYSIS_INGEST_{name}": value for name, value in more.items()},
    }


@dataclass(frozen=True)
class CollectorKey:
    tenant_id: int
    tenant_slug: str
    database: str
    collector_id: int
    collector_name: str
    key: str  # the plaintext, as a collector would hold it
    hostname: str = "host.example"  # the collector's registered hostname
    host_tag: str = HOST_TAG_PINNED


def issue_collector_key(
    db: Session,
    hasher: CredentialHasher,
    tenant_slug: str,
    collector_name: str,
    storage: Storage | None = None,
    vault: Vault | None = None,
    *,
    hostname: str = "host.example",
    host_tag: str = HOST_TAG_PINNED,
) -> CollectorKey:
    """A collector and a key in tenant ``tenant_slug``, creating the tenant if it is missing.

    The collector is registered as ``hostname``, pinned (ingest writes its points with that host
    tag) unless ``host_tag`` is free (its points keep the host tags they are sent with).
    """
    actor = system_actor("test")
    tenant = db.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
    if tenant is None:
        tenant = create_tenant(
            db,
            actor,
            tenant_slug,
            tenant_slug.title(),
            storage or NoStorage(),
            vault or Vault("unused-secret-" + "x" * 32),
        )
    collector = register_collector(
        db, actor, tenant, {"name": collector_name, "hostname": hostname, "host_tag": host_tag}
    )
    issued = issue_key(db, actor, tenant, collector, hasher)
    return CollectorKey(
        tenant.id,
        tenant.slug,
        tenant.influx_database,
        collector.id,
        collector.name,
        issued.plaintext,
        collector.hostname,
        collector.host_tag,
    )
