"""alertmanager.yml from the thresholds file's receivers, so routes and rules cannot disagree.

Routing, first match first:

1. Watchdog (perfanalysis.alerting.platform), alone, to the ``watchdog`` receiver: the operator's
   external heartbeat (``watchdog`` in thresholds.yaml), never with ``send_resolved`` (a
   "resolved" post would look like a heartbeat when Prometheus has stopped). Without one the
   receiver has no integration and the generator warns.
2. IngestRejectingPoints for a storage reason (``storage_*``: InfluxDB down, refusing ingest's
   credentials, failing, or refusing points) to ``default``, the platform's receiver, with
   ``continue``, so that the tenant's route below gets it too: storage is the platform's to fix,
   not the tenant's.
3. A tenant with its own ``notify`` gets a route on ``tenant="<slug>"`` to ``tenant-<slug>``
   (``null``, which drops alerts, for ``notify: {mute: true}``).
4. Everything else (tenants without ``notify``, unknown tenants, targets without a tenant, the
   platform's alerts) falls through to ``default``, or to ``null`` when no default webhook or
   e-mail is configured (thresholds.py warns then).

Grouping by alertname, tenant and instance keeps one notification per problem per host. Inhibition
keeps an outage to the alerts that name its cause:

* while a critical alert fires, the warning of the same alert on the same instance (and device,
  mountpoint or reason: of an ingest rejection or an exporter's dropped points) is inhibited:
  one page, not two;
* while TargetDown fires for a host, that host's other alerts (same tenant and instance) are
  inhibited: its rules keep firing meanwhile (``keep_firing_for``, rules.py), so the host going
  dark sends neither a flood of stale alerts nor "resolved" for each;
* while ingest's storage fails for a tenant (IngestRejectingPoints with a reason that makes ingest
  answer 5xx, which exporters retry: storage_unavailable, storage_refused, storage_error), that
  tenant's ExporterPushStalled and ExporterSpoolGrowing are inhibited on every host: the
  rejection names the cause once. IngestRejectingPoints carries the tenant it counts (ingest's
  own target has no tenant label), so ``equal: [tenant]`` matches that tenant's exporters.
  storage_conflict (points refused for their content, answered 422, which exporters drop rather
  than retry) stalls no push and inhibits nothing;
* while TargetDown fires for ingest (the ``ingest`` scrape job, which carries no tenant), every
  tenant's ExporterPushStalled and ExporterSpoolGrowing are inhibited (no ``equal``). With
  several ingest replicas behind a load balancer, one down replica does this too, while it is
  down.
"""

from __future__ import annotations

from typing import Any

from perfanalysis.alerting import platform
from perfanalysis.alerting.rules import dump
from perfanalysis.alerting.thresholds import Notify, Thresholds

NULL = "null"
DEFAULT = "default"
WATCHDOG = "watchdog"
GROUP_BY = ["alertname", "tenant", "instance"]
# Labels missing on both alerts count as equal in Alertmanager, so host-wide alerts still match.
# IngestRejectingPoints has no instance: only its reason tells one problem from another; and a
# critical ExporterDroppingPoints for a full spool must not hide a warning for rejected points.
INHIBIT_EQUAL = ["alertname", "tenant", "instance", "device", "mountpoint", "reason"]
# Storage reasons of IngestRejectingPoints: all are the platform's to fix (routed to default too)...
STORAGE_REASONS = "storage_.*"
# ...and those answered 5xx, which exporters retry: they stall pushes and grow spools.
STORAGE_OUTAGE_REASONS = "storage_(unavailable|refused|error)"
PUSH_ALERTS = "ExporterPushStalled|ExporterSpoolGrowing"
INGEST_JOB = "ingest"  # the scrape job of ingest in prometheus.yml (deploy/compose's too)
# The heartbeat's notifications: soon after start, then every minute or two.
WATCHDOG_TIMING = {"group_wait": "0s", "group_interval": "1m", "repeat_interval": "1m"}


def receiver(name: str, notify: Notify, send_resolved: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if notify.webhooks:
        entry["webhook_configs"] = [
            {"url": url, "send_resolved": send_resolved} for url in notify.webhooks
        ]
    if notify.emails:
        entry["email_configs"] = [
            {"to": to, "send_resolved": send_resolved} for to in notify.emails
        ]
    return entry


def tenant_receiver(slug: str) -> str:
    return f"tenant-{slug}"


def inhibit_rules() -> list[dict[str, Any]]:
    return [
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": INHIBIT_EQUAL,
        },
        {
            "source_matchers": ['alertname="TargetDown"'],
            "target_matchers": ['alertname!="TargetDown"', f'alertname!="{platform.WATCHDOG}"'],
            "equal": ["tenant", "instance"],
        },
        {
            "source_matchers": [
                'alertname="IngestRejectingPoints"',
                f'reason=~"{STORAGE_OUTAGE_REASONS}"',
            ],
            "target_matchers": [f'alertname=~"{PUSH_ALERTS}"'],
            "equal": ["tenant"],
        },
        {
            "source_matchers": ['alertname="TargetDown"', f'job="{INGEST_JOB}"'],
            "target_matchers": [f'alertname=~"{PUSH_ALERTS}"'],
        },
    ]


def config(thresholds: Thresholds) -> dict[str, Any]:
    default = DEFAULT if thresholds.notify else NULL
    watchdog = thresholds.watchdog or Notify()
    receivers = [{"name": NULL}]
    if thresholds.notify:
        receivers.append(receiver(DEFAULT, thresholds.notify))
    receivers.append(receiver(WATCHDOG, watchdog, send_resolved=False))
    routes: list[dict[str, Any]] = [
        {"matchers": [f'alertname="{platform.WATCHDOG}"'], "receiver": WATCHDOG, **WATCHDOG_TIMING}
    ]
    if thresholds.notify:
        routes.append(
            {
                "matchers": ['alertname="IngestRejectingPoints"', f'reason=~"{STORAGE_REASONS}"'],
                "receiver": DEFAULT,
                "continue": True,
            }
        )
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
    result["inhibit_rules"] = inhibit_rules()
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
