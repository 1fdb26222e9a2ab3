"""A tenant's InfluxDB read credentials, given back to a platform admin (``admin read-credentials``).

The read user's password is stored encrypted (tenants.crypto.Vault) because Grafana's data source
and reports need it; an SRE checking a restore or querying the tenant's data with the influx CLI
needs it too. Each disclosure is recorded in the audit log (who, which user; never the password).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tenants.access import Actor, require_platform
from tenants.audit import record
from tenants.crypto import Vault
from tenants.errors import Conflict, Invalid
from tenants.models import Tenant


@dataclass(frozen=True)
class ReadCredentials:
    database: str
    user: str
    password: str

    def __repr__(self) -> str:  # never the password, in a traceback or a log
        return f"ReadCredentials(database={self.database!r}, user={self.user!r})"


def read_credentials(
    db: Session, actor: Actor, tenant: Tenant, vault: Vault, **details: Any
) -> ReadCredentials:
    """The tenant's read user and its password, decrypted under the secret key or one of the
    previous ones; the disclosure is recorded (with ``details``) and committed before it is
    returned, so no password is shown that the audit log does not know of.

    Conflict when the tenant has no stored credentials (its storage was never provisioned);
    Invalid when they decrypt under none of the keys given (a configuration problem).
    """
    require_platform(actor)
    if not tenant.influx_read_user or not tenant.influx_read_password_encrypted:
        raise Conflict(
            f"tenant {tenant.slug} has no stored InfluxDB read credentials (it was created while "
            "no InfluxDB was configured, or its provisioning failed): run perfanalysis admin "
            f"provision-storage {tenant.slug}, then perfanalysis grafana sync"
        )
    try:
        password = vault.decrypt(tenant.influx_read_password_encrypted)
    except ValueError:
        raise Invalid(
            f"tenant {tenant.slug}: its stored InfluxDB read password decrypts under neither "
            "secret-key nor previous-secret-keys: give the secret key it was stored under (as "
            "--secret-key, or in --previous-secret-keys)"
        ) from None
    record(db, actor, "tenant.read_credentials", tenant, "tenant", tenant.id,
           user=tenant.influx_read_user, database=tenant.influx_database, **details)  # fmt: skip
    db.commit()
    return ReadCredentials(tenant.influx_database, tenant.influx_read_user, password)
