"""``perfanalysis admin [settings] COMMAND [args]``: database, users, tenants, collectors, keys,
API tokens.

Settings flags (and PERFANALYSIS_ADMIN_* variables) come before the command; they are loaded, and
the app built, only when a command runs, so that ``--help`` needs no valid configuration.
Passwords are never taken from the command line, where other users could read them: they are
prompted for, or read from PERFANALYSIS_NEW_PASSWORD (set-password also from a file or standard
input). Keys and API tokens are printed once.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import click
from flask import Flask

from tenants import db as database
from tenants.access import Actor, system_actor
from tenants.errors import ServiceError
from tenants.models import HOST_TAG_PINNED, HOST_TAGS


def _app(ctx: click.Context) -> Flask:
    app: Flask = ctx.obj["app"]
    return app


def _actor() -> Actor:
    return system_actor("cli")


class BadInput(click.ClickException):
    """Refused input that click itself does not check: exit 2, as click's own usage errors."""

    exit_code = 2


def _tenant(db: Any, slug: str) -> Any:
    """The tenant by slug; the refusal names the slug the operator typed."""
    from tenants.access import tenant_for
    from tenants.errors import NotFound

    try:
        return tenant_for(db, _actor(), slug)
    except NotFound:
        raise NotFound(f"no such tenant {slug!r}", "tenant") from None


@contextmanager
def _provisioning(slug: str) -> Iterator[None]:
    """InfluxDB provisioning refuses a name it must not use (a read user named like the admin or
    ingest user) with ValueError: bad input here, named with the tenant."""
    try:
        yield
    except ValueError as exc:
        raise BadInput(f"cannot provision the storage of tenant {slug}: {exc}") from None


USAGE = "[settings] COMMAND [args]"
SETTINGS_NOTE = (
    "Settings are flags given before the command, or PERFANALYSIS_ADMIN_* environment variables"
)


def _settings_listing() -> str:
    """The settings flags and their variables, as tenants/settings.py describes them."""
    from tenants.settings import build_spec

    lines = build_spec().help_text().splitlines()
    return "\n".join(lines[lines.index("flags:") + 1 :])


class _Command(click.Command):
    """A command whose usage shows where the settings go, and whose help says where they are
    listed. Its help needs no configuration: settings and app are loaded when it runs."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        program = f"{ctx.parent.command_path} [settings] " if ctx.parent else ""
        pieces = " ".join(self.collect_usage_pieces(ctx))
        formatter.write_usage(f"{program}{ctx.info_name}", pieces)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(f"{SETTINGS_NOTE}: 'perfanalysis admin --help' lists them.")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """An option given twice is refused, as a setting given twice is: click would keep the
        last and drop the other without a word (``--hostname a --hostname b``)."""
        options = {name: option for option in self.params if isinstance(option, click.Option)
                   and not option.multiple and not option.count for name in option.opts}  # fmt: skip
        seen: set[str] = set()
        rest = iter(args)
        for arg in rest:
            if arg == "--":
                break
            name = arg.partition("=")[0]
            option = options.get(name)
            if option is None:
                continue
            if option.name in seen:
                raise click.UsageError(f"{name} is given twice: give it once", ctx)
            seen.add(option.name or name)
            if not option.is_flag and "=" not in arg:
                next(rest, None)  # its value, whatever it looks like
        return super().parse_args(ctx, args)


class _ListingSettings(_Command):
    """A command whose help lists every setting (serve, where most of them matter)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        click.Command.format_epilog(self, ctx, formatter)
        _write_settings(formatter)


def _write_settings(formatter: click.HelpFormatter) -> None:
    formatter.write_paragraph()
    formatter.write(f"{SETTINGS_NOTE}:\n{_settings_listing()}\n")


class _Admin(click.Group):
    command_class = _Command

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, USAGE)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text("Run 'perfanalysis admin COMMAND --help' for a command's arguments.")
        _write_settings(formatter)


@click.group(cls=_Admin, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def admin(ctx: click.Context) -> None:
    """Manage the admin database, users, tenants, collectors, API keys and API tokens."""


@admin.command("init-db")
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Create or upgrade the schema to the newest migration."""
    from tenants.schema import current_revision, upgrade

    engine = _app(ctx).extensions["pa_engine"]
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)} ({engine.url.render_as_string()})")


def _new_password() -> str:
    """PERFANALYSIS_NEW_PASSWORD, else the password typed twice; without a terminal, two lines
    of standard input, and none there (``</dev/null``) is said, not a bare exit 1."""
    if "PERFANALYSIS_NEW_PASSWORD" in os.environ:
        return os.environ["PERFANALYSIS_NEW_PASSWORD"]
    try:
        password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    except click.exceptions.Abort:
        if sys.stdin.isatty():
            raise
        raise click.ClickException(
            "no password given: standard input is not a terminal and holds none; set "
            "PERFANALYSIS_NEW_PASSWORD or give the password on two lines of standard input"
        ) from None
    return password


@admin.command("create-user")
@click.argument("email")
@click.option("--name", default="")
@click.option("--platform-admin", is_flag=True, help="May manage every tenant and user.")
@click.pass_context
def create_user(ctx: click.Context, email: str, name: str, platform_admin: bool) -> None:
    """Create a user; the password is prompted for (or PERFANALYSIS_NEW_PASSWORD)."""
    from tenants.accounts import create_user as create

    with _app(ctx).app_context():
        user = create(database.session(), _actor(), email, _new_password(), name, platform_admin)
        click.echo(
            f"created user {user.email} (id {user.id}{', platform admin' if platform_admin else ''})"
        )


def _user(db: Any, email: str) -> Any:
    """The user by e-mail; the refusal names the address the operator typed."""
    from tenants.accounts import get_user_by_email
    from tenants.errors import NotFound

    user = get_user_by_email(db, email)
    if user is None:
        raise NotFound(f"no user with e-mail {email}", "email")
    return user


FELT = "running servers refuse their sessions and API tokens within key-cache-seconds"


def _change_user(
    ctx: click.Context, email: str, change: Callable[..., bool], unchanged: str,
    done: Callable[[Any], str],
) -> None:  # fmt: skip
    """Apply ``change`` (a tenants.accounts service) to the user with ``email``; ``unchanged``
    (formatted with the address) when it changed nothing, else ``done(user)``. This process
    forgets what it cached of the user; running servers within key-cache-seconds."""
    app = _app(ctx)
    with app.app_context():
        db = database.session()
        user = _user(db, email)
        if not change(db, _actor(), user):
            click.echo(unchanged.format(email=user.email))
            return
        app.extensions["pa_principals"].forget_user(user.id)
        click.echo(done(user))


@admin.command("disable-user")
@click.argument("email")
@click.pass_context
def disable_user(ctx: click.Context, email: str) -> None:
    """Disable a user: no login; their sessions end, their API tokens are refused and the
    invitations they may no longer grant are revoked.

    The last active platform admin cannot be disabled. A tenant's last active admin can: the
    command names the tenants left without an admin who can log in. enable-user undoes it.
    """
    from tenants.accounts import set_active, tenants_without_active_admin

    def done(user: Any) -> str:
        message = f"disabled user {user.email} (id {user.id}); {FELT}"
        orphaned = tenants_without_active_admin(database.session(), user)
        if orphaned:
            slugs = ", ".join(tenant.slug for tenant in orphaned)
            message += (f"\nno admin of {slugs} can log in now: give another member the admin "
                        "role (add-member) or enable this user again")  # fmt: skip
        return message

    _change_user(ctx, email, partial(set_active, active=False), "user {email} is already disabled",
                 done)  # fmt: skip


@admin.command("enable-user")
@click.argument("email")
@click.pass_context
def enable_user(ctx: click.Context, email: str) -> None:
    """Enable a disabled user again: they may log in, and their unexpired API tokens work again
    (the sessions and invitations ended when they were disabled do not come back)."""
    from tenants.accounts import set_active

    _change_user(ctx, email, partial(set_active, active=True), "user {email} is already enabled",
                 lambda user: f"enabled user {user.email} (id {user.id})")  # fmt: skip


@admin.command("grant-platform-admin")
@click.argument("email")
@click.pass_context
def grant_platform_admin(ctx: click.Context, email: str) -> None:
    """Make a user a platform admin: they may manage every tenant and user."""
    from tenants.accounts import set_platform_admin

    def done(user: Any) -> str:
        disabled = "" if user.is_active else " (disabled: enable-user lets them log in)"
        return f"{user.email} is now a platform admin{disabled}"

    _change_user(ctx, email, partial(set_platform_admin, platform_admin=True),
                 "{email} is already a platform admin", done)  # fmt: skip


@admin.command("revoke-platform-admin")
@click.argument("email")
@click.pass_context
def revoke_platform_admin(ctx: click.Context, email: str) -> None:
    """Take platform-admin rights from a user; their tenant roles stay.

    The last active platform admin keeps them: grant another user first.
    """
    from tenants.accounts import set_platform_admin

    _change_user(ctx, email, partial(set_platform_admin, platform_admin=False),
                 "{email} is not a platform admin",
                 lambda user: f"{user.email} is no longer a platform admin; running servers "
                 "refuse them platform rights within key-cache-seconds")  # fmt: skip


@admin.command("set-password")
@click.argument("email")
@click.option(
    "--password-file",
    metavar="FILE",
    help="Read the new password from FILE, one line ('-': standard input).",
)
@click.pass_context
def set_password(ctx: click.Context, email: str, password_file: str | None) -> None:
    """Give a user a new password; their sessions end, their API tokens are kept.

    The password is read from --password-file, else PERFANALYSIS_NEW_PASSWORD, else prompted
    for on a terminal, else read as one line from standard input; never from the command line.
    """
    from tenants.accounts import set_password as reset

    app = _app(ctx)
    with app.app_context():
        db = database.session()
        user = _user(db, email)  # an unknown address is named before a password is asked for
        db.rollback()  # and no transaction stays open while it is typed
        reset(db, _actor(), user, _password_for_reset(password_file))
        app.extensions["pa_principals"].forget_user(user.id)
        click.echo(
            f"set a new password for {user.email}; running servers end their sessions within "
            "key-cache-seconds (their API tokens keep working: revoke-token or disable-user)"
        )


def _password_for_reset(password_file: str | None) -> str:
    if password_file is not None:
        return _password_read(password_file)
    if "PERFANALYSIS_NEW_PASSWORD" in os.environ:
        return os.environ["PERFANALYSIS_NEW_PASSWORD"]
    if sys.stdin.isatty():
        return _new_password()
    return _password_read("-")


def _password_read(source: str) -> str:
    """The one line ``source`` (a file, or "-": standard input) holds, its line end dropped."""
    where = "standard input" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_SECRET_FILE + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise click.ClickException(
            f"cannot read the password from {where}: {exc.strerror or exc}; nothing was changed"
        ) from None
    if len(data) > MAX_SECRET_FILE:
        raise BadInput(f"{where} holds more than {MAX_SECRET_FILE} bytes, not a password")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise BadInput(f"the password in {where} is not UTF-8 text") from None
    line = text.removesuffix("\n").removesuffix("\r")
    if "\n" in line or "\r" in line:
        raise BadInput(f"{where} holds more than one line: give the password alone")
    return line


@admin.command("create-tenant")
@click.argument("slug")
@click.argument("name")
@click.option(
    "--adopt-database",
    is_flag=True,
    help="Take over an InfluxDB database of the tenant's name that exists already and holds data "
    "(after a restore, or a re-created admin database): its data becomes the tenant's. Its "
    "default retention policy becomes 'default' (influxdb.retention): data kept under another "
    "(a database made by hand writes to autogen) is read only by naming it. Without this option "
    "such a database is refused and nothing is created.",
)
@click.pass_context
def create_tenant(ctx: click.Context, slug: str, name: str, adopt_database: bool) -> None:
    """Create a tenant and provision its InfluxDB database and read user."""
    from tenants.tenancy import create_tenant as create

    app = _app(ctx)
    with app.app_context(), _provisioning(slug):
        tenant = create(
            database.session(),
            _actor(),
            slug,
            name,
            app.extensions["pa_storage"],
            app.extensions["pa_vault"],
            adopt_database,
        )
        if tenant.influx_read_user:
            click.echo(f"created tenant {tenant.slug} (database {tenant.influx_database})")
            return
        click.echo(f"created tenant {tenant.slug}; its database {tenant.influx_database} was not "
                   "created")  # fmt: skip
        click.echo(f"warning: {NO_STORAGE}: the tenant's data is refused until then (run admin "
                   f"provision-storage {tenant.slug} with them)", err=True)  # fmt: skip


NO_STORAGE = (
    "no InfluxDB is configured: give the settings --influxdb.url, --influxdb.admin-user and "
    "--influxdb.admin-password (or PERFANALYSIS_ADMIN_INFLUXDB_*) before the command"
)


def _set_tenant_status(ctx: click.Context, slug: str, active: bool) -> None:
    """The tenant service the pages and the API use (audited as tenant.enable or
    tenant.disable); a tenant already so is said, and nothing recorded."""
    from tenants.tenancy import set_tenant_status

    wanted = "active" if active else "disabled"
    with _app(ctx).app_context():
        db = database.session()
        tenant = _tenant(db, slug)
        if tenant.status == wanted:
            click.echo(f"tenant {tenant.slug} is already {'enabled' if active else 'disabled'}")
            return
        set_tenant_status(db, _actor(), tenant, active)
    if active:
        click.echo(f"enabled tenant {slug}: ingest takes its collectors' keys again within "
                   "key-cache-seconds")  # fmt: skip
    else:
        click.echo(f"disabled tenant {slug}: ingest refuses all of its collectors' keys (403) "
                   "within key-cache-seconds; enable-tenant undoes it")  # fmt: skip


@admin.command("disable-tenant")
@click.argument("slug", metavar="TENANT")
@click.pass_context
def disable_tenant(ctx: click.Context, slug: str) -> None:
    """Disable a tenant: ingest refuses all of its collectors' keys (403) within
    key-cache-seconds, and their exporters keep the points in their (bounded) spools meanwhile.
    Nothing is deleted; enable-tenant undoes it."""
    _set_tenant_status(ctx, slug, active=False)


@admin.command("enable-tenant")
@click.argument("slug", metavar="TENANT")
@click.pass_context
def enable_tenant(ctx: click.Context, slug: str) -> None:
    """Enable a disabled tenant again: ingest takes its collectors' keys within
    key-cache-seconds, and their exporters send what they kept."""
    _set_tenant_status(ctx, slug, active=True)


@admin.command("provision-storage")
@click.argument("slugs", nargs=-1, metavar="[TENANT]...")
@click.option("--all", "every", is_flag=True, help="Every tenant.")
@click.pass_context
def provision_storage(ctx: click.Context, slugs: tuple[str, ...], every: bool) -> None:
    """Create or repair tenants' InfluxDB databases and read users (idempotent).

    For a tenant created while no InfluxDB was configured, and after an InfluxDB restore, which
    brings back databases but not their users and grants. Each read user gets a new password:
    run grafana sync afterwards, so that the tenant's data source uses it.
    """
    from sqlalchemy import select

    from tenants.models import Tenant
    from tenants.tenancy import NoStorage
    from tenants.tenancy import provision_storage as provision

    if bool(slugs) == every:
        raise click.UsageError("name the tenants, or give --all (not both)")
    app = _app(ctx)
    storage = app.extensions["pa_storage"]
    if isinstance(storage, NoStorage):
        raise BadInput(NO_STORAGE)
    with app.app_context():
        db = database.session()
        if every:
            tenants = list(db.scalars(select(Tenant).order_by(Tenant.slug)))
        else:
            tenants = [_tenant(db, slug) for slug in dict.fromkeys(slugs)]
        for tenant in tenants:
            with _provisioning(tenant.slug):
                provision(db, _actor(), tenant, storage, app.extensions["pa_vault"])
            click.echo(f"{tenant.slug}: database {tenant.influx_database} and read user "
                       f"{tenant.influx_read_user} ready")  # fmt: skip
    click.echo(f"provisioned {len(tenants)} tenant(s); run grafana sync to give their data "
               "sources the new read passwords")  # fmt: skip


@admin.command("read-credentials")
@click.argument("tenant")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write them to this file (mode 0600, replaced whole) instead of printing them.",
)
@click.pass_context
def read_credentials(ctx: click.Context, tenant: str, output: Path | None) -> None:
    """Show a tenant's InfluxDB read-only user and its password, as the influx CLI reads them
    from its environment (INFLUX_USERNAME=..., INFLUX_PASSWORD=...).

    The password is the one stored for Grafana, decrypted under the secret key or a previous
    one. Each use is recorded in the audit log (never the password). provision-storage gives the
    user a new password: read it again after that.
    """
    from tenants.credentials import read_credentials as read

    app = _app(ctx)
    where = "standard output" if output is None else str(output)
    with _private_file(output) as install, app.app_context():
        db = database.session()
        found = _tenant(db, tenant)
        credentials = read(db, _actor(), found, app.extensions["pa_vault"],
                           os_user=_os_user(), output=where)  # fmt: skip
        text = f"INFLUX_USERNAME={credentials.user}\nINFLUX_PASSWORD={credentials.password}\n"
        disabled = "" if found.active else " (the tenant is disabled; its read user still works)"
        about = (f"tenant {found.slug}: database {credentials.database}, read-only user "
                 f"{credentials.user}{disabled}")  # fmt: skip
        if install is None:
            click.echo(f"{about}; the credentials:", err=True)
            click.echo(text, nl=False)
        else:
            install(text)
            click.echo(f"{about}; the credentials written to {output}")


def _os_user() -> str:
    """Who ran the command, for the audit log: the login (through sudo, the one who ran sudo)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container's)
        user = f"uid {os.getuid()}"
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (sudo to {user})" if sudo and sudo != user else user


@contextmanager
def _private_file(path: Path | None) -> Iterator[Callable[[str], None] | None]:
    """None without PATH; else a function that puts its text in PATH whole (mode 0600, through a
    temporary file beside it renamed over it). The temporary file is made before the block runs,
    so a PATH that cannot be written stops the command before anything is read or recorded."""
    import tempfile

    if path is None:
        yield None
        return
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write to {path}: {_write_problem(path, exc)}; nothing was read"
        ) from None

    def install(text: str) -> None:
        try:
            _replace_contents(descriptor, text)
            os.replace(temporary, path)
        except OSError as exc:
            raise click.ClickException(
                f"cannot write to {path}: {exc.strerror or exc}; it was left as it was"
            ) from None

    try:
        yield install
    finally:
        os.close(descriptor)
        Path(temporary).unlink(missing_ok=True)


@admin.command("set-ingest-limits")
@click.argument("tenant")
@click.option("--rate", help="Points per second over all of ingest (0: no limit).")
@click.option("--burst", help="Points at once above the rate, and most in one request.")
@click.option("--default", "to_default", is_flag=True, help="Both back to ingest's defaults.")
@click.pass_context
def set_ingest_limits(
    ctx: click.Context, tenant: str, rate: str | None, burst: str | None, to_default: bool
) -> None:
    """Set a tenant's own ingest rate and burst; an option left out keeps its value."""
    from tenants.tenancy import set_ingest_limits as set_limits

    if to_default == (rate is not None or burst is not None):
        raise click.UsageError("give --rate and/or --burst, or --default alone")
    with _app(ctx).app_context():
        db = database.session()
        found = _tenant(db, tenant)
        new_rate = None if to_default else (rate if rate is not None else found.ingest_rate)
        new_burst = None if to_default else (burst if burst is not None else found.ingest_burst)
        set_limits(db, _actor(), found, new_rate, new_burst)
        click.echo(f"{tenant}: ingest {_limits_shown(found.ingest_rate, found.ingest_burst)}")


def _limits_shown(rate: float | None, burst: int | None) -> str:
    """The stored limits as the tenant's settings page shows them: the rate as typed, with
    thousands separators and no exponent, rounded nowhere."""
    from tenants.validation import readable_number

    if rate is None:
        shown_rate = "default"
    else:
        shown_rate = "no limit" if rate == 0 else f"{readable_number(rate)} points/s"
    shown_burst = "default" if burst is None else f"{burst:,} points"
    return f"rate {shown_rate}, burst {shown_burst}"


@admin.command("add-member")
@click.argument("tenant")
@click.argument("email")
@click.argument("role", type=click.Choice(["admin", "analyst", "viewer"]))
@click.pass_context
def add_member(ctx: click.Context, tenant: str, email: str, role: str) -> None:
    """Give a user a role in a tenant."""
    from tenants.accounts import set_membership

    with _app(ctx).app_context():
        db = database.session()
        set_membership(db, _actor(), _tenant(db, tenant), email, role)
        click.echo(f"{email} is {role} in {tenant}")


@admin.command("create-collector")
@click.argument("tenant")
@click.argument("name")
@click.option("--hostname", required=True)
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="key=value, one label each; repeat for more (a value may hold commas, not ',key=')",
)
@click.option("--vcpus", type=int)
@click.option("--memory-bytes", type=int)
@click.option("--cloud-provider")
@click.option("--region")
@click.option("--instance-type")
@click.option(
    "--host-tag",
    type=click.Choice(HOST_TAGS),
    default=HOST_TAG_PINNED,
    show_default=True,
    help="pinned: ingest writes the collector's points with host=HOSTNAME, whatever the client "
    "sent; free: the client's host tag is kept (a collector pushing for many hosts).",
)
@click.pass_context
def create_collector(
    ctx: click.Context,
    tenant: str,
    name: str,
    hostname: str,
    labels: tuple[str, ...],
    vcpus: int | None,
    memory_bytes: int | None,
    cloud_provider: str | None,
    region: str | None,
    instance_type: str | None,
    host_tag: str,
) -> None:
    """Register a collector (a monitored host) in a tenant."""
    from tenants.collectors import register_collector

    fields = {"name": name, "hostname": hostname, "labels": list(labels), "vcpus": vcpus,
              "memory_bytes": memory_bytes, "cloud_provider": cloud_provider, "region": region,
              "instance_type": instance_type, "host_tag": host_tag}  # fmt: skip
    with _app(ctx).app_context():
        db = database.session()
        collector = register_collector(db, _actor(), _tenant(db, tenant), fields)
        click.echo(
            f"registered collector {collector.name} (id {collector.id}) in {tenant}, "
            f"host tag {collector.host_tag}"
        )


@admin.command("set-host-tag")
@click.argument("tenant")
@click.argument("collector")
@click.argument("host_tag", metavar="pinned|free", type=click.Choice(HOST_TAGS))
@click.pass_context
def set_host_tag(ctx: click.Context, tenant: str, collector: str, host_tag: str) -> None:
    """Pin a collector's points to its hostname (ingest forces host=HOSTNAME) or free them.

    Running ingest servers apply it within their key-cache-seconds.
    """
    from tenants.collectors import set_collector_host_tag

    with _app(ctx).app_context():
        db = database.session()
        owner = _tenant(db, tenant)
        found = set_collector_host_tag(
            db, _actor(), owner, _collector(db, owner, collector), host_tag
        )
        where = f"host={found.pinned_host}" if found.pinned_host else "the client's host tag"
        click.echo(f"collector {found.name} in {tenant}: host tag {found.host_tag} ({where})")


def _collector(db: Any, tenant: Any, name: str) -> Any:
    """The tenant's collector by name: as typed, else in the composed form (NFC) names are
    stored in, whatever form the terminal gave, else decomposed (NFD), as a name stored before
    names were normalised may be."""
    import unicodedata

    from sqlalchemy import select

    from tenants.errors import NotFound
    from tenants.models import Collector

    collector = None
    forms = (name, *(unicodedata.normalize(form, name) for form in ("NFC", "NFD")))
    for form in dict.fromkeys(forms):
        query = select(Collector).where(Collector.tenant_id == tenant.id, Collector.name == form)
        collector = collector or db.scalar(query)
    if collector is None:
        raise NotFound(f"no collector named {name!r} in {tenant.slug}")
    return collector


def _key_expiry_days(ctx: click.Context, param: click.Parameter, days: int | None) -> int | None:
    """Checked here to name the option; tenants.keys (slow to import) holds the bound."""
    from tenants.keys import MAX_EXPIRY_DAYS

    if days is None:
        return None
    checked: int = click.IntRange(1, MAX_EXPIRY_DAYS).convert(days, param, ctx)
    return checked


@admin.command("issue-key")
@click.argument("tenant")
@click.argument("collector")
@click.option("--name", default="")
@click.option("--expires-in-days", type=int, callback=_key_expiry_days, help="Default: never.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the key to this file (mode 0600) instead of printing it.",
)
@click.pass_context
def issue_key(
    ctx: click.Context,
    tenant: str,
    collector: str,
    name: str,
    expires_in_days: int | None,
    output: Path | None,
) -> None:
    """Issue a collector key; it is shown once and cannot be recovered."""
    from tenants.keys import issue_key as issue

    app = _app(ctx)
    with _secret_delivery(output) as deliver, app.app_context():
        db = database.session()
        owner = _tenant(db, tenant)
        issued = issue(
            db,
            _actor(),
            owner,
            _collector(db, owner, collector),
            app.extensions["pa_hasher"],
            name,
            expires_in_days,
        )
        deliver(issued.key.key_id, issued.plaintext)


@contextmanager
def _secret_delivery(
    output: Path | None, what: str = "key"
) -> Iterator[Callable[[str, str], None]]:
    """Deliver the secret (a key or a token) issued inside the block: printed, or written to
    OUTPUT (see _prepared_secret_file). A write that fails after all prints the secret and exits
    1, so the one copy of it is not lost.
    """
    if output is None:
        yield _print_secret(what)
        return
    with _prepared_secret_file(output, what) as replace_contents:

        def write(public_id: str, plaintext: str) -> None:
            try:
                replace_contents(plaintext + "\n")
            except OSError as exc:
                click.echo(plaintext)
                raise click.ClickException(
                    f"{what} {public_id} was issued but cannot be written to {output}: "
                    f"{exc.strerror or exc}; it is printed on standard output instead, shown once"
                ) from None
            click.echo(f"{what} id {public_id} written to {output}")

        yield write


def _print_secret(what: str) -> Callable[[str, str], None]:
    def show(public_id: str, plaintext: str) -> None:
        click.echo(f"{what} id {public_id}; the {what}, shown once:", err=True)
        click.echo(plaintext)

    return show


@contextmanager
def _prepared_secret_file(path: Path, what: str) -> Iterator[Callable[[str], None]]:
    """PATH opened for writing (created 0600 if missing; what it holds is kept until the new
    secret is written) before the block runs, so a file that cannot be written stops the command
    before a secret exists whose plaintext would be lost; and a function that replaces what it
    holds (a failed write leaves it empty, never part of a secret). A file this made is removed
    when nothing was written to it.
    """
    descriptor, created = _open_secret_file(path, what)
    written = False

    def replace_contents(text: str) -> None:
        nonlocal written
        try:
            _replace_contents(descriptor, text)
        except OSError:
            with suppress(OSError):
                os.ftruncate(descriptor, 0)
            raise
        written = True

    try:
        yield replace_contents
    finally:
        os.close(descriptor)
        if created and not written:
            path.unlink(missing_ok=True)


def _open_secret_file(path: Path, what: str) -> tuple[int, bool]:
    """A descriptor open for writing on PATH, and whether this call created the file."""
    try:
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), True
        except FileExistsError:
            return os.open(path, os.O_WRONLY), False
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the {what} to {path}: {_write_problem(path, exc)}; no {what} was issued"
        ) from None


def _write_problem(path: Path, exc: OSError) -> str:
    """Why PATH cannot be written. Its directory is never made: a mistyped path would otherwise
    put the secret where nobody looks, in directories made with the command's rights."""
    if isinstance(exc, FileNotFoundError) and not path.parent.is_dir():
        return f"directory {path.parent} does not exist"
    return exc.strerror or str(exc)


def _replace_contents(descriptor: int, text: str) -> None:
    regular = stat.S_ISREG(os.fstat(descriptor).st_mode)  # not a pipe or /dev/stdout
    if regular:
        os.ftruncate(descriptor, 0)
    data = text.encode()
    while data:
        data = data[os.write(descriptor, data) :]
    if regular:
        os.fsync(descriptor)


@admin.command("revoke-key")
@click.argument("tenant")
@click.argument("key_id")
@click.pass_context
def revoke_key(ctx: click.Context, tenant: str, key_id: str) -> None:
    """Revoke a key by its public id; ingest refuses it within seconds."""
    from tenants.keys import get_key
    from tenants.keys import revoke_key as revoke

    with _app(ctx).app_context():
        db = database.session()
        owner = _tenant(db, tenant)
        revoke(db, _actor(), owner, get_key(db, _actor(), owner, key_id))
        click.echo(f"revoked key {key_id}")


@admin.command("reencrypt-secrets")
@click.pass_context
def reencrypt_secrets(ctx: click.Context) -> None:
    """After a secret-key rotation: encrypt stored credentials again under the current key."""
    from tenants.tenancy import reencrypt_stored_credentials

    app = _app(ctx)
    with app.app_context():
        count = reencrypt_stored_credentials(
            database.session(), _actor(), app.extensions["pa_vault"]
        )
    click.echo(f"re-encrypted the stored InfluxDB read passwords of {count} tenant(s)")


@admin.command("grant-ingest-writes")
@click.pass_context
def grant_ingest_writes(ctx: click.Context) -> None:
    """Grant the InfluxDB ingest user WRITE on every existing tenant's database (idempotent)."""
    from tenants.influx import StorageError
    from tenants.tenancy import grant_ingest_writes as grant

    app = _app(ctx)

    def report(tenant: Any, outcome: str) -> None:
        click.echo(f"{tenant.slug} ({tenant.influx_database}): {OUTCOMES[outcome]}")

    with app.app_context():
        try:
            outcomes = grant(database.session(), _actor(), app.extensions["pa_storage"], report)
        except StorageError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(_grants_summary(list(outcomes.values())))


def _grants_summary(outcomes: list[str]) -> str:
    """One line on the grants: those already there are not counted as failures to grant."""
    granted, already, missing = (outcomes.count(o) for o in ("granted", "unchanged", "missing"))
    databases = granted + already
    every = "the one tenant database" if databases == 1 else f"all {databases} tenant databases"
    if databases == 0:
        summary = "no tenant database to grant WRITE on"
    elif granted == 0:
        summary = f"WRITE already on {every}"
    elif already == 0:
        summary = f"WRITE granted on {every}"
    else:
        summary = (
            f"WRITE granted on {granted}, already on {already} of {databases} tenant databases"
        )
    if missing == 1:
        summary += "; 1 tenant without a database: run admin provision-storage for it"
    elif missing:
        summary += f"; {missing} tenants without a database: run admin provision-storage for them"
    return f"ingest user: {summary}"


OUTCOMES = {
    "granted": "WRITE granted",
    "unchanged": "already has WRITE",
    "missing": "no InfluxDB database: run admin provision-storage for it first",
}


def _overlap_hours(ctx: click.Context, param: click.Parameter, hours: float) -> float:
    """Checked here, before it becomes a timedelta: NaN or 1e12 hours would not."""
    from tenants.keys import MAX_OVERLAP

    most = MAX_OVERLAP.total_seconds() / 3600
    if not (math.isfinite(hours) and 0 <= hours <= most):
        raise click.BadParameter(f"must be from 0 to {most:g} hours, not {hours:g}", ctx, param)
    return hours


@admin.command("rotate-key")
@click.argument("tenant")
@click.argument("key_id")
@click.option(
    "--overlap-hours", type=float, default=24.0, show_default=True, callback=_overlap_hours
)
@click.option(
    "--expires-in-days",
    type=int,
    callback=_key_expiry_days,
    help="When the new key expires. Default: it is issued for as long as the old key was.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the new key to this file (mode 0600) instead of printing it.",
)
@click.pass_context
def rotate_key(
    ctx: click.Context,
    tenant: str,
    key_id: str,
    overlap_hours: float,
    expires_in_days: int | None,
    output: Path | None,
) -> None:
    """Issue a replacement key; the old one keeps working for the overlap, then expires."""
    from datetime import timedelta

    from tenants.keys import KEEP_LIFETIME, get_key
    from tenants.keys import rotate_key as rotate

    app = _app(ctx)
    with _secret_delivery(output) as deliver, app.app_context():
        db = database.session()
        owner = _tenant(db, tenant)
        issued = rotate(
            db,
            _actor(),
            owner,
            get_key(db, _actor(), owner, key_id),
            app.extensions["pa_hasher"],
            timedelta(hours=overlap_hours),
            KEEP_LIFETIME if expires_in_days is None else expires_in_days,
        )
        deliver(issued.key.key_id, issued.plaintext)


def _token_expiry_days(ctx: click.Context, param: click.Parameter, days: int | None) -> int | None:
    """Checked here to name the option; tenants.accounts (slow to import) holds the bound."""
    from tenants.accounts import MAX_TOKEN_EXPIRY_DAYS

    if days is None:
        return None
    checked: int = click.IntRange(1, MAX_TOKEN_EXPIRY_DAYS).convert(days, param, ctx)
    return checked


@admin.command("issue-token")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", required=True, help="What the token is for, e.g. 'CI deploy job'.")
@click.option("--expires-in-days", type=int, callback=_token_expiry_days, help="Default: never.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the token to this file (mode 0600) instead of printing it.",
)
@click.pass_context
def issue_token(
    ctx: click.Context, email: str, name: str, expires_in_days: int | None, output: Path | None
) -> None:
    """Issue a personal API token for a user; it is shown once and cannot be recovered."""
    from tenants.accounts import get_user_by_email
    from tenants.accounts import issue_token as issue
    from tenants.errors import NotFound

    app = _app(ctx)
    with _secret_delivery(output, "token") as deliver, app.app_context():
        db = database.session()
        user = get_user_by_email(db, email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}", "email")
        token, plaintext = issue(
            db, user, app.extensions["pa_hasher"], name,
            expires_in_days=expires_in_days, issued_by=_actor(),
        )  # fmt: skip
        deliver(token.token_id, plaintext)


@admin.command("revoke-token")
@click.argument("token_id")
@click.pass_context
def revoke_token(ctx: click.Context, token_id: str) -> None:
    """Revoke any user's API token by its public id; the API refuses it within seconds."""
    from tenants.accounts import get_token
    from tenants.accounts import revoke_token as revoke

    app = _app(ctx)
    with app.app_context():
        db = database.session()
        token = revoke(db, _actor(), get_token(db, None, token_id))
        app.extensions["pa_principals"].forget_token(token.token_id)
        click.echo(f"revoked token {token_id} of {token.user.email}")


@admin.command("ensure-demo")
@click.option("--var-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_context
def ensure_demo(ctx: click.Context, var_dir: Path) -> None:
    """Create, once, a platform admin, a demo tenant, a collector for this host and its key.

    A second run reuses them: the admin password and the collector key live in files (mode 0600)
    under VAR_DIR and are only created when missing (or empty, or, for the key, one the database
    no longer knows or has revoked). When the password file is missing
    but the admin exists, the admin gets the new password, so the file always holds a working one.
    Both files are made ready before anything changes in the database; a key whose file write
    fails after all is revoked, and a new key, once in its file, replaces the collector's earlier
    ones (the exporter, refused, reads the file again), so a rerun leaves no live key nobody holds.
    VAR_DIR is made (mode 0700) if missing, as `make up` makes it.

    A kept password file whose password the admin does not take (the admin database restored
    from a backup made before the file was written, or the password changed since), or an admin
    who is disabled, is said on the "admin login:" line (which `make up` repeats in its summary)
    with the fix; nothing is changed for it: the database's password may be the one wanted.
    """
    import secrets
    import socket

    from tenants.demo import ensure_admin, withdraw_key
    from tenants.demo import ensure_demo as ensure

    app = _app(ctx)
    _make_state_dir(var_dir)
    password_file = var_dir / "admin-password"
    key_file = var_dir / "demo-collector.key"
    password = _kept_secret(password_file, "admin password")
    new_password = not password
    have_key = _live_demo_key(app, key_file)
    with ExitStack() as files:
        key_output = (
            None if have_key else files.enter_context(_prepared_secret_file(key_file, "key"))
        )
        install_password = None
        if new_password:
            password = secrets.token_urlsafe(12)
            install_password = files.enter_context(
                _staged_secret(password_file, password, "admin password")
            )
        with app.app_context():
            db = database.session()
            ensure_admin(app, db, password, new_password)
            if install_password is not None:
                install_password()
            refused = _demo_login_problem(db, password, password_file)
            with _provisioning("demo"):
                result = ensure(app, db, socket.gethostname(), have_key)
            if key_output is not None and result.key_plaintext:
                try:
                    key_output(result.key_plaintext + "\n")
                except OSError as exc:
                    withdraw_key(db, result.key_id)
                    raise click.ClickException(
                        f"cannot write the demo collector key to {key_file}: "
                        f"{exc.strerror or exc}; key {result.key_id} was revoked, so none is "
                        "left that nobody holds: fix that and run again"
                    ) from None
                revoked = _revoke_earlier_demo_keys(db, result.key_id, key_file)
                click.echo(f"key id {result.key_id} written to {key_file}{revoked}")
    click.echo(
        f"admin login: {result.admin_email} / " + (refused or f"password in {password_file}")
    )
    click.echo(
        f"demo tenant: {result.tenant_slug}; collector {result.collector_name}; key in {key_file}"
    )


def _demo_login_problem(db: Any, password: str, password_file: Path) -> str | None:
    """Why the demo admin cannot log in with the password in ``password_file``, with the fix;
    None when it can."""
    from tenants.accounts import get_user_by_email
    from tenants.crypto import verify_password
    from tenants.demo import ADMIN_EMAIL

    admin = get_user_by_email(db, ADMIN_EMAIL)
    assert admin is not None  # ensure_admin made it
    problems = []
    if not verify_password(admin.password_hash, password):
        problems.append(
            f"LOGIN REFUSED: the password in {password_file} is not this admin's (the admin "
            "database is older than that file, restored from a backup say, or the password was "
            "changed since); to give the admin the file's password: make admin "
            f"ARGS='set-password {ADMIN_EMAIL} --password-file {password_file}' (or remove "
            f"{password_file} and run make up again, which writes a new one and gives it to the "
            "admin), else log in with the password the database has"
        )
    if not admin.is_active:
        problems.append(
            f"{'' if problems else 'LOGIN REFUSED: '}the admin is disabled: make admin "
            f"ARGS='enable-user {ADMIN_EMAIL}'"
        )
    return "; and ".join(problems) or None


def _make_state_dir(var_dir: Path) -> None:
    try:
        var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        reason = "Not a directory" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise click.ClickException(
            f"cannot make {var_dir}: {reason}; nothing was changed"
        ) from None


def _revoke_earlier_demo_keys(db: Any, key_id: str, key_file: Path) -> str:
    """Revoke the demo collector's keys other than KEY_ID, whose file is written: an emptied or
    lost key file leaves none live that nobody holds. What to add to the report of the new key.

    They are revoked together or not at all; if not, the new key still works and the operator
    is told which to revoke.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tenants.demo import ACTOR, TENANT
    from tenants.keys import get_key, other_live_keys, revoke_keys

    tenant = _tenant(db, TENANT)
    earlier = other_live_keys(db, get_key(db, ACTOR, tenant, key_id))
    ids = [key.key_id for key in earlier]
    try:
        revoke_keys(db, ACTOR, tenant, earlier)
    except SQLAlchemyError as exc:
        problem = database_problem(db.get_bind().url.render_as_string(), exc)
        raise click.ClickException(
            f"key {key_id} was written to {key_file}, but the demo collector's earlier keys "
            f"could not be revoked ({problem}): revoke them with "
            + ", ".join(f"'perfanalysis admin revoke-key {TENANT} {each}'" for each in ids)
        ) from None
    if not ids:
        return ""
    return f"; earlier key{'s' if len(ids) > 1 else ''} {', '.join(ids)} revoked"


def _live_demo_key(app: Flask, key_file: Path) -> bool:
    """Whether the key file holds a key the database still knows, unrevoked and unexpired. One
    it no longer knows (the admin database restored from before the key, say) is replaced; a
    key refused for its disabled collector or tenant is kept: that is the operator's choice."""
    from tenants.errors import Unauthenticated

    key = _kept_secret(key_file, "demo collector key")
    if not key:
        return False
    with app.app_context():
        try:
            app.extensions["pa_key_verifier"].verify(key)
        except Unauthenticated as exc:
            click.echo(f"the key in {key_file} no longer works ({exc.message}): a new one "
                       "replaces it")  # fmt: skip
            return False
        except ServiceError:
            pass
    return True


def _kept_secret(path: Path, what: str) -> str:
    """What a secret file holds; empty when it is missing (or empty: a write cut short)."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        if not stat.S_ISREG(mode):
            raise click.ClickException(
                f"the {what} file {path} is not a regular file; nothing was changed"
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE + 1)
        if len(data) > MAX_SECRET_FILE:
            raise click.ClickException(
                f"the {what} file {path} holds more than {MAX_SECRET_FILE} bytes, no {what}; "
                "nothing was changed"
            )
        return data.decode().strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise click.ClickException(
            f"cannot read the {what} file {path}: {reason or exc}; nothing was changed"
        ) from None


MAX_SECRET_FILE = 4096


@contextmanager
def _staged_secret(path: Path, secret: str, what: str) -> Iterator[Callable[[], None]]:
    """SECRET written whole (0600) to a temporary file beside PATH before anything else is
    done, and a function that renames it into place; removed if that is never called."""
    import tempfile

    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            _replace_contents(descriptor, secret + "\n")
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the {what} to {path}: {_write_problem(path, exc)}; nothing was changed"
        ) from None

    def install() -> None:
        try:
            os.replace(temporary, path)
        except OSError as exc:
            click.echo(secret)
            raise click.ClickException(
                f"the {what} was set but cannot be written to {path}: {exc.strerror or exc}; "
                "it is printed on standard output instead, shown once"
            ) from None

    try:
        yield install
    finally:
        Path(temporary).unlink(missing_ok=True)


@admin.command("seed-prices")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                required=False)  # fmt: skip
@click.option(
    "--if-empty",
    is_flag=True,
    help="Load only when the catalog has no global row yet, and leave one loaded before (from "
    "this file or another) as it is: what Compose's admin-init and the Kubernetes admin pods "
    "run at every start. Without it, PATH's rows replace the global rows of the same machines.",
)
@click.pass_context
def seed_prices(ctx: click.Context, path: Path | None, if_empty: bool) -> None:
    """Load the global price catalog from PATH (default provisioning/prices.yaml); tenants' own
    prices are never touched."""
    from sqlalchemy import func, select

    from tenants.loadtests.models import PriceEntry
    from tenants.loadtests.prices import seed_prices as seed

    path = path or Path(__file__).resolve().parents[1] / "provisioning" / "prices.yaml"
    with _app(ctx).app_context():
        db = database.session()
        if if_empty:
            stored = db.scalar(select(func.count()).select_from(PriceEntry)
                               .where(PriceEntry.tenant_id.is_(None)))  # fmt: skip
            if stored:
                click.echo(f"price catalog: {stored} global rows already stored, left as they "
                           f"are (--if-empty; without it, {path} would be loaded over them)")  # fmt: skip
                return
        changed = seed(db, _actor(), path)
    click.echo(f"price catalog: {changed} rows added or changed from {path}")


@admin.command("load-examples")
@click.argument("tenant")
@click.pass_context
def load_examples(ctx: click.Context, tenant: str) -> None:
    """Store the original system's load-test results (provisioning/examples) in TENANT."""
    from tenants.loadtests.examples import load_examples as load

    with _app(ctx).app_context():
        db = database.session()
        stored = load(db, _actor(), _tenant(db, tenant))
    click.echo(f"{stored} example load tests stored in {tenant}")


LISTING_FORMAT = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table: aligned columns for a terminal; csv and json: every field, for other tools.",
)


def _listing(ctx: click.Context, build: Callable[[Any], Any], output_format: str) -> None:
    """Write the listing ``build(db)`` returns as it is read, a page at a time. A reader that
    stops early (``| head``) ends it quietly."""
    from tenants.fleet_export import write_listing

    with _app(ctx).app_context():
        listing = build(database.session())
        try:
            write_listing(listing, output_format, partial(click.echo, nl=False))
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()


def _quiet_stdout() -> None:
    """Standard output pointed at /dev/null, so that the interpreter's last flush of what is
    still buffered for a closed pipe raises nothing at exit."""
    with suppress(AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        descriptor = os.open(os.devnull, os.O_WRONLY)
        os.dup2(descriptor, sys.stdout.fileno())
        os.close(descriptor)


@admin.command("list-collectors")
@click.argument("tenant")
@LISTING_FORMAT
@click.pass_context
def list_collectors(ctx: click.Context, tenant: str, output_format: str) -> None:
    """List a tenant's collectors, by name.

    Their id, hostname, status, host tag, labels, size, cloud, when last seen and the points
    received (the table shows the most used of them).
    """
    from tenants.fleet_export import collectors

    _listing(ctx, lambda db: collectors(db, _actor(), _tenant(db, tenant)), output_format)


@admin.command("list-keys")
@click.argument("tenant")
@LISTING_FORMAT
@click.pass_context
def list_keys(ctx: click.Context, tenant: str, output_format: str) -> None:
    """List a tenant's collector keys, newest first.

    Their id (pak_<id>_), name, collector, state, and when created, expiring, revoked and last
    used; never a key's secret, nor its hash.
    """
    from tenants.fleet_export import keys

    _listing(ctx, lambda db: keys(db, _actor(), _tenant(db, tenant)), output_format)


@admin.command("list-users")
@click.argument("tenant", required=False)
@LISTING_FORMAT
@click.pass_context
def list_users(ctx: click.Context, tenant: str | None, output_format: str) -> None:
    """List every user, or TENANT's members, by e-mail.

    Every user with their tenants and roles, or TENANT's members with their role; whether
    active and platform admin, and when they last logged in.
    """
    from tenants.fleet_export import users

    def build(db: Any) -> Any:
        return users(db, _actor(), None if tenant is None else _tenant(db, tenant))

    _listing(ctx, build, output_format)


@admin.command("export-targets")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=9100, show_default=True,
              help="The port every exporter serves its metrics on.")  # fmt: skip
@click.option("--tenant", "slugs", multiple=True, metavar="SLUG",
              help="Only this tenant (repeat for more); default: every tenant.")  # fmt: skip
@click.option(
    "--prune",
    is_flag=True,
    help="Remove the target files this command wrote for tenants that no longer exist (when "
    "every tenant is exported) or that list no target, and replace hand-written target files "
    "of the tenants (a file that is no target file is never touched).",
)
@click.pass_context
def export_targets(
    ctx: click.Context, directory: Path, port: int, slugs: tuple[str, ...], prune: bool
) -> None:
    """Write Prometheus' target files of the collectors.

    DIRECTORY/<slug>.yml per tenant (file-SD), listing each enabled collector as
    <hostname>:<port> labelled with tenant and collector (a disabled tenant's file lists none).

    A file is replaced whole, and only when its contents change; Prometheus reads it again by
    itself. Nothing is removed without --prune. A hand-written file (without the generated
    header) that lists targets is left alone, and the command exits 1, unless --prune.
    """
    from tenants.fleet_export import export_targets as export
    from tenants.fleet_export import shown

    with _app(ctx).app_context():
        db = database.session()
        tenants = [_tenant(db, slug) for slug in dict.fromkeys(slugs)] if slugs else None
        try:
            result = export(db, _actor(), directory, port, tenants, prune, say=click.echo,
                            warn=lambda line: click.echo(f"warning: {line}", err=True))  # fmt: skip
        except OSError as exc:
            raise click.ClickException(
                f"cannot update {shown(str(exc.filename or directory))}: "
                f"{exc.strerror or exc}; the target files listed above are done, the others "
                "left as they were"
            ) from None
    click.echo(result.summary(directory))
    if not result.complete:
        raise click.ClickException(
            f"{result.left_alone} hand-written target file(s) left alone (see the warnings): "
            "they do not list the registered collectors"
        )


@admin.command("serve", cls=_ListingSettings)
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Serve the admin app under gunicorn."""
    from perfanalysis import web_tls
    from perfanalysis.serving import serve as run
    from tenants.app import check_database_before_serving, create_app

    settings = ctx.obj["settings"]
    check_database_before_serving(settings)  # exit 2: a missing SQLite file, or no schema
    host, port = settings["web_listen_address"]
    run(
        lambda: create_app(settings),
        host,
        port,
        settings["web_workers"],
        settings["web_threads"],
        settings["web_request_timeout"],
        worker_exit=worker_exit,
        **web_tls.gunicorn_options(settings),
    )


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker: write the collector keys' pending use (load-test uploads)."""
    app = getattr(worker, "wsgi", None)
    verifier = getattr(app, "extensions", {}).get("pa_key_verifier")
    if verifier is not None:
        verifier.flush()


class _BadSetup(click.ClickException):
    """The settings or the app could not be loaded: exit 2, the problems one a line."""

    exit_code = 2

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


class _Setup(dict[str, Any]):
    """The commands' ``ctx.obj``: "settings" and "app", loaded when a command first asks for
    them, so that ``COMMAND --help`` needs no valid configuration."""

    def __init__(self, settings_args: Sequence[str]) -> None:
        super().__init__()
        self.settings_args = list(settings_args)

    def __missing__(self, key: str) -> Any:
        if key not in ("settings", "app"):
            raise KeyError(key)
        from sqlalchemy.exc import SQLAlchemyError

        from perfanalysis.config import ConfigError
        from tenants.app import create_app
        from tenants.settings import load

        try:
            settings = load(self.settings_args)
            try:
                app = create_app(settings)
            except SQLAlchemyError as exc:
                problem = database_problem(settings["database_url"], exc)
                raise _BadSetup([f"perfanalysis admin: {problem}"]) from None
        except (ConfigError, ValueError) as exc:
            errors = exc.errors if isinstance(exc, ConfigError) else [str(exc)]
            raise _BadSetup(
                ["perfanalysis admin: invalid configuration:", *(f"  - {e}" for e in errors)]
            ) from None
        self.update(settings=settings, app=app)
        return self[key]


HELP = ("-h", "--help")


def run(argv: Sequence[str]) -> int:
    """Split settings flags from the command, run the command; the settings are loaded and the
    app built when the command runs (its ``--help`` needs neither).

    Exit 2 for bad input (a configuration problem, click's usage errors, a value a service
    refuses as Invalid), 1 when something fails at run time (the admin database or InfluxDB
    unreachable or refusing, a name that does not exist); always one line, never a traceback.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tenants.errors import Invalid
    from tenants.influx import StorageError

    args = list(argv)
    split = next((i for i, a in enumerate(args) if a in admin.commands), len(args))
    context = click.Context(admin, info_name="perfanalysis admin", **admin.context_settings)
    mistyped = _unknown_command(args) if split == len(args) else None
    if mistyped is not None and not any(a in HELP for a in args[:mistyped]):
        error = click.exceptions.NoSuchCommand(
            args[mistyped], possibilities=admin.commands, ctx=context
        )
        error.show()
        return error.exit_code
    if split == len(args) or any(a in HELP for a in args[:split]):
        click.echo(admin.get_help(context))
        return 2 if args and not any(a in HELP for a in args[:split]) else 0
    setup = _Setup(args[:split])
    try:
        admin.main(args[split:], prog_name="perfanalysis admin", obj=setup, standalone_mode=False)
    except ServiceError as exc:
        click.echo(f"perfanalysis admin: {exc.message}", err=True)
        return 2 if isinstance(exc, Invalid) else 1
    except StorageError as exc:
        url = setup["settings"]["influxdb_url"]
        where = "" if url in str(exc) else f" (influxdb.url {url})"
        click.echo(f"perfanalysis admin: {exc}{where}", err=True)
        return 1
    except SQLAlchemyError as exc:
        problem = database_problem(setup["settings"]["database_url"], exc)
        click.echo(f"perfanalysis admin: {problem}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("perfanalysis admin: aborted", err=True)
        return 1
    except click.NoSuchOption as exc:
        setting = _setting_flag(exc.option_name)
        if setting is None:
            exc.show()
        else:
            click.echo(
                f"perfanalysis admin: {exc.option_name} is a setting: give it before the command "
                f"(perfanalysis admin {setting} {args[split]} ...)",
                err=True,
            )
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def _unknown_command(args: Sequence[str]) -> int | None:
    """Where the command should be, when none of ARGS names one: the first argument that is
    neither a settings flag nor a flag's value."""
    from tenants.settings import build_spec

    flags = build_spec().by_flag()
    rest = iter(enumerate(args))
    for index, arg in rest:
        if not arg.startswith("-"):
            return index
        name, has_value, _ = arg.removeprefix("--").partition("=")
        setting = flags.get(name)
        if setting is not None and not setting.boolean and not has_value:
            next(rest, None)
    return None


def _setting_flag(option: str) -> str | None:
    """How to give the setting a ``--flag`` (or ``--no-flag``) a command does not take names:
    ``--flag=...`` or, for a boolean, the flag as given; None when it names no setting."""
    from tenants.settings import build_spec

    flags = build_spec().by_flag()
    name = option.removeprefix("--")
    if name in flags:
        return option if flags[name].boolean else f"{option}=..."
    negated = flags.get(name.removeprefix("no-")) if name.startswith("no-") else None
    return option if negated is not None and negated.boolean else None


# what SQLite and PostgreSQL say of a table or column the migrations would have made
UNMIGRATED = re.compile(r'no such (table|column)|(relation|column) "[^"]*" does not exist')


def database_problem(database_url: str, exc: Exception) -> str:
    """One line: the admin database (its password hidden), the driver's first line of cause,
    and for a schema never made the command that makes it. A failed statement was rolled back
    (the session is closed with the app context), so nothing is half-stored."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    original = getattr(exc, "orig", None)
    cause = str(original if original is not None else exc).strip().partition("\n")[0]
    hint = "; run: perfanalysis admin init-db" if UNMIGRATED.search(cause) else ""
    try:
        shown = make_url(database_url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = "(an unparseable URL)"
    return f"admin database {shown}: {cause}{hint}"


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
