"""Settings of ``perfanalysis grafana sync``: a flag and a PERFANALYSIS_GRAFANA_ variable for each.

Creating orgs needs a Grafana server admin, so basic auth (user and password) is the usual
credential; a token works against a Grafana whose token may manage orgs. The admin database and
its secret key default to the admin app's own variables (PERFANALYSIS_ADMIN_DATABASE_URL,
DATABASE_URL, PERFANALYSIS_ADMIN_SECRET_KEY), which decrypt each tenant's InfluxDB read password.
The alert rules' thresholds come from the file Prometheus' rules are generated from
(provisioning/thresholds.yaml in the checkout, or --thresholds).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from perfanalysis.config import (
    ConfigError,
    Setting,
    Spec,
    admin_database_url,
    optional_http_url,
    parse,
    readable_file,
    timeout_seconds,
)

ENV_PREFIX = "PERFANALYSIS_GRAFANA_"
TENANT_PLACEHOLDER = "{tenant}"
BRACED = re.compile(r"\{[^{}]*\}")


def _slugs(text: str) -> list[str]:
    """``acme,globex``: tenant slugs by the admin app's rule (tenants.validation.SLUG), each
    once. Only the default (nothing given) is empty, which means every active tenant; a value
    given that names no tenant is refused by ``_names_a_tenant``, not taken for all of them."""
    if not text.strip():
        return []
    from tenants.validation import SLUG

    slugs: list[str] = []
    for number, part in enumerate(text.split(","), 1):
        slug = part.strip()
        if not slug:
            raise ValueError(f"entry {number} is empty: give slugs separated by single commas")
        if not SLUG.match(slug):
            raise ValueError(f"{slug!r} is not a tenant slug (1-40 lowercase letters, digits and "
                             "inner hyphens, e.g. acme-prod)")  # fmt: skip
        if slug in slugs:
            raise ValueError(f"{slug!r} is listed twice")
        slugs.append(slug)
    return slugs


def _names_a_tenant(slugs: list[str]) -> str | None:
    """A --tenants given empty (or blank) would otherwise sync every tenant."""
    if slugs:
        return None
    return ("names no tenant: give one or more slugs separated by commas, or leave the setting "
            "out to sync every active tenant")  # fmt: skip


def alert_webhook_url(text: str) -> str:
    """An http(s) URL in which ``{tenant}``, the one placeholder, becomes each tenant's slug; any
    other ``{...}`` is a typo that would send every tenant's alerts to the same literal URL."""
    unknown = [m for m in BRACED.findall(text) if m != TENANT_PLACEHOLDER]
    if unknown:
        shown = ", ".join(dict.fromkeys(unknown))
        noun = "placeholder" if len(set(unknown)) == 1 else "placeholders"
        raise ValueError(f"unknown {noun} {shown}: {TENANT_PLACEHOLDER} is the only one")
    rest = BRACED.sub("", text)
    if "{" in rest or "}" in rest:
        raise ValueError(f"a brace that is not part of {TENANT_PLACEHOLDER}")
    # checked as Grafana will get it, with a slug in place of the placeholder
    optional_http_url(text.replace(TENANT_PLACEHOLDER, "tenant"))
    return text.rstrip("/")


def build_spec() -> Spec:
    spec = Spec(
        program="perfanalysis grafana sync",
        env_prefix=ENV_PREFIX,
        description="Create or update each tenant's Grafana org, InfluxDB data source, dashboards "
        "and alert rules through Grafana's HTTP API; a second run changes nothing.",
    )
    for setting in (
        Setting("url", "Grafana's base URL.", "", optional_http_url, metavar="URL"),
        Setting("user", "Grafana server admin user (basic auth).", "", metavar="USER"),
        Setting("password", "Password of --user.", "", secret=True, metavar="PASSWORD"),
        Setting("token", "Bearer token instead of --user/--password.", "", secret=True, metavar="TOKEN"),
        Setting("influxdb-url", "InfluxDB URL as Grafana reaches it, for each tenant's data source.",
                "", optional_http_url, metavar="URL"),
        Setting("alert-webhook-url", "Webhook each tenant's Grafana alerts are sent to, as Grafana "
                "reaches it; {tenant} is replaced by the tenant's slug (no contact point when empty).",
                "", alert_webhook_url, metavar="URL"),
        Setting("database-url", "Admin database URL (default: PERFANALYSIS_ADMIN_DATABASE_URL, "
                "DATABASE_URL, then the admin app's SQLite file).", None, admin_database_url,
                metavar="URL"),
        Setting("secret-key", "The admin app's secret key, to decrypt stored InfluxDB passwords "
                "(default: PERFANALYSIS_ADMIN_SECRET_KEY).", None, secret=True, metavar="SECRET"),
        Setting("dev", "Development mode, as the admin app's --dev: its generated secret key "
                "under var/ when no secret key is given (PERFANALYSIS_ADMIN_SECRET_KEY counts). "
                "With the default database (var/admin.db), it reads the make up stack's.", False,
                boolean=True),
        Setting("tenants", "Comma-separated tenant slugs to sync (default: every active tenant).",
                "", _slugs, metavar="SLUGS", validate=_names_a_tenant),
        Setting("thresholds", "The alert thresholds file, the one `perfanalysis alerting generate` "
                "reads: each tenant's Grafana rules get its thresholds there, or the defaults "
                "(default: provisioning/thresholds.yaml in the checkout). An invalid file stops "
                "sync before anything is sent to Grafana.", None, readable_file, metavar="FILE"),
        Setting("timeout", "Seconds to wait for each Grafana request.", 10.0, timeout_seconds,
                metavar="SECONDS"),
    ):  # fmt: skip
        spec.add(setting)
    spec.checks.append(_checks)
    return spec


# What sync writes, which prune-orphans does not: their variables (set for sync, as in the
# grafana-sync service of docker-compose.yml) are ignored there, their flags refused.
SYNC_ONLY = ("influxdb-url", "alert-webhook-url", "tenants", "thresholds")


def build_prune_spec() -> Spec:
    spec = Spec(
        program="perfanalysis grafana prune-orphans",
        env_prefix=ENV_PREFIX,
        description="Delete the Grafana orgs that sync marked for a tenant no longer in the admin "
        "database (each sync lists them as orphans). Never the main org, nor an org without "
        "sync's marker. Takes sync's settings, without those of what sync writes.",
    )
    for setting in build_spec().settings:
        if setting.flag == "secret-key":  # prune decrypts nothing
            setting = dataclasses.replace(setting, help="The admin app's secret key, needed only "
                                          "when the database URL comes from the admin app's "
                                          "settings (default: PERFANALYSIS_ADMIN_SECRET_KEY).")  # fmt: skip
        if setting.flag not in SYNC_ONLY:
            spec.add(setting)
    spec.add(Setting("dry-run", "List the orphans that would be deleted; delete nothing.", False,
                     boolean=True))  # fmt: skip
    spec.add(Setting("force", "Delete the orphans even when they are every org sync manages (the "
                     "admin database has no tenant with an org); refused without it, as a wrong "
                     "--database-url would otherwise delete every tenant's org.", False,
                     boolean=True))  # fmt: skip
    spec.checks.append(_grafana_checks)
    return spec


def load_prune(
    argv: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Parse the settings of prune-orphans; raises ConfigError listing every problem."""
    env = dict(os.environ if environ is None else environ)
    spec = build_prune_spec()
    ignored = {s.env_name(ENV_PREFIX) for s in build_spec().settings if s.flag in SYNC_ONLY}
    own = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k not in ignored}
    values = parse(spec, argv, own)
    if values["database_url"] is None:
        values.update(_from_admin_settings(env, values["secret_key"], None, values["dev"]))
    return values


def _checks(values: dict[str, Any]) -> list[str]:
    errors = _grafana_checks(values)
    if not values["influxdb_url"]:
        errors.append(
            f"setting influxdb-url: required: give --influxdb-url or {ENV_PREFIX}INFLUXDB_URL"
        )
    return errors


def _grafana_checks(values: dict[str, Any]) -> list[str]:
    errors = []
    if not values["url"]:
        errors.append(f"setting url: required: give --url or {ENV_PREFIX}URL")
    if values["token"] and (values["user"] or values["password"]):
        given = " and ".join(f"--{n}" for n in ("user", "password") if values[n])
        errors.append(
            f"credentials: --token and {given} are both given (flag or {ENV_PREFIX} variable); "
            "give either --token or --user and --password"
        )
    elif not values["token"] and not (values["user"] and values["password"]):
        errors.append("credentials: give --user and --password (a server admin) or --token")
    return errors


def load(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse the sync settings; raises ConfigError listing every problem."""
    env = dict(os.environ if environ is None else environ)
    values = parse(build_spec(), argv, {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)})
    if values["thresholds"] is None:
        from perfanalysis.grafana.alerts import default_thresholds

        values["thresholds"] = str(default_thresholds())
    if values["database_url"] is None or values["secret_key"] is None:
        values.update(
            _from_admin_settings(env, values["secret_key"], values["database_url"], values["dev"])
        )
    return values


def _from_admin_settings(
    env: Mapping[str, str], secret_key: str | None, database_url: str | None, dev: bool
) -> dict[str, Any]:
    """The admin app's database URL and secret key, parsed by the admin app's own rules; ``dev``
    is its --dev (a secret key given, or PERFANALYSIS_ADMIN_SECRET_KEY, still wins, as there)."""
    from tenants.settings import load as load_admin

    admin_env = {
        k: v for k, v in env.items() if k.startswith("PERFANALYSIS_ADMIN_") or k == "DATABASE_URL"
    }
    if secret_key is not None:
        admin_env["PERFANALYSIS_ADMIN_SECRET_KEY"] = secret_key
    if database_url is not None:
        admin_env["PERFANALYSIS_ADMIN_DATABASE_URL"] = database_url
    if dev:
        admin_env["PERFANALYSIS_ADMIN_DEV"] = "true"
    try:
        admin = load_admin([], admin_env)
    except ConfigError as exc:
        hint = (
            f"give --secret-key/--database-url or {ENV_PREFIX}SECRET_KEY/{ENV_PREFIX}DATABASE_URL"
        )
        # "run with --dev": this command's own --dev (or PERFANALYSIS_GRAFANA_DEV) does that
        raise ConfigError([f"admin settings: {e}" for e in exc.errors] + [hint]) from None
    return {"database_url": admin["database_url"], "secret_key": admin["secret_key"]}
