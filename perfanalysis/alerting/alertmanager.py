"""alertmanager.yml from the thresholds file's receivers, so routes and rules cannot disagree.

Routing: a tenant with its own ``notify`` gets a route on ``tenant="<slug>"`` to receiver
``tenant-<slug>``; everything else (tenants without ``notify``, unknown tenants, targets without a
tenant) falls through to ``default``, or to ``null`` (which drops alerts) when no default webhook
or e-mail is configured. Grouping by alertname, tenant and instance keeps one notification per
problem per host. While a critical alert fires, the warning of the same alert on the same
instance (and device, mountpoint or reason: of an ingest rejection or an exporter's dropped
points) is inhibited: one page, not two.
"""

from __future__ import annotations

from typing import Any

from perfanalysis.alerting.rules import dump
from perfanalysis.alerting.thresholds import Notify, Thresholds

NULL = "null"
DEFAULT = "default"
GROUP_BY = ["alertname", "tenant", "instance"]
# Labels missing on both alerts count as equal in Alertmanager, so host-wide alerts still match.
# IngestRejectingPoints has no instance: only its reason tells one problem from another; and a
# critical ExporterDroppingPoints for a full spool must not hide a warning for rejected points.
INHIBIT_EQUAL = ["alertname", "tenant", "instance", "device", "mountpoint", "reason"]


def receiver(name: str, notify: Notify) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if notify.webhooks:
        entry["webhook_configs"] = [{"url": url, "send_resolved": True} for url in notify.webhooks]
    if notify.emails:
        entry["email_configs"] = [{"to": to, "send_resolved": True} for to in notify.emails]
    return entry


def tenant_receiver(slug: str) -> str:
    return f"tenant-{slug}"


def config(thresholds: Thresholds) -> dict[str, Any]:
    default = DEFAULT if thresholds.notify else NULL
    receivers = [{"name": NULL}]
    if thresholds.notify:
        receivers.append(receiver(DEFAULT, thresholds.notify))
    routes = []
    for slug, tenant in sorted(thresholds.tenants.items()):
        if tenant.notify is not None:
            name = tenant_receiver(slug) if tenant.notify else NULL
            routes.append({"matchers": [f'tenant="{slug}"'], "receiver": name})
            if tenant.notify:
                receivers.append(receiver(name, tenant.notify))
    result: dict[str, Any] = {"global": {"resolve_timeout": "5m"}}
    if thresholds.smtp is not None:
        result["global"].update(
            smtp_smarthost=thresholds.smtp.smarthost,
            smtp_from=thresholds.smtp.sender,
            smtp_require_tls=thresholds.smtp.require_tls,
        )
    result["route"] = {
        "receiver": default,
        "group_by": GROUP_BY,
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": routes,
    }
    result["inhibit_rules"] = [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": INHIBIT_EQUAL,
        }
    ]
    result["receivers"] = receivers
    return result


def render(thresholds: Thresholds) -> str:
    return dump(config(thresholds))


def expected_receiver(thresholds: Thresholds, tenant: str | None) -> str:
    """Where an alert with this tenant label (None: no label) should be routed."""
    entry = thresholds.tenants.get(tenant) if tenant is not None else None
    if entry is not None and entry.notify is not None:
        return tenant_receiver(tenant) if entry.notify and tenant else NULL
    return DEFAULT if thresholds.notify else NULL
