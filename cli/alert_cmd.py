"""``swtel alert …``: alert rules, notification channels, and the alerts themselves, in PostgreSQL."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import msgspec
import typer

from swtel.hub.alerts import db
from swtel.hub.alerts.channels import parse_hostport, redacted, validate_channel
from swtel.hub.alerts.rules import SEVERITIES, Rule, format_duration, parse_duration, parse_selector_tags, validate
from swtel.hub.storage.connect import connect_once
from swtel.shared.errors import InvalidInput

from . import common

T = TypeVar("T")

app = typer.Typer(help="Alert rules, notification channels and alerts.", no_args_is_help=True)
rule_app = typer.Typer(help="Manage alert rules.", no_args_is_help=True)
channel_app = typer.Typer(help="Manage notification channels (webhook, Slack, email).", no_args_is_help=True)
app.add_typer(rule_app, name="rule")
app.add_typer(channel_app, name="channel")

DB_HELP = "PostgreSQL DSN (env SWTEL_DATABASE_URL)"


def _say(text: str) -> None:
    # markup off: gNMI paths are full of [key=value], which rich would take for style tags
    common.console.print(text, markup=False, highlight=False)


def _table(columns: list[str], rows: list[tuple[Any, ...]], *, empty: str) -> None:
    common.print_table(columns, rows, empty=empty)


@asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect_once(dsn)
    try:
        await db.ensure_schema(conn)  # until the hub's `swtel db migrate` owns these tables
        yield conn
    finally:
        await conn.close()


def _with_db(ctx: typer.Context, dsn: str | None, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    s = common.settings(ctx, database_url=dsn)

    async def go() -> T:
        async with _connection(s.database_url) as conn:
            return await work(conn)

    return common.run(go())


# ---- rules ---------------------------------------------------------------------------------------------


@rule_app.command("add")
def rule_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="rule name"),
    device: str | None = typer.Option(None, "--device", help="one device by name"),
    tag: list[str] = typer.Option([], "--tag", help="select devices by tag k=v (repeatable; all must match)"),
    path: str = typer.Option(..., "--path", help="gNMI path pattern, * as a key value: /interfaces/interface\\[name=*]/state/counters/in-errors"),
    above: float | None = typer.Option(None, "--above", help="fire when the value is above X"),
    below: float | None = typer.Option(None, "--below", help="fire when the value is below X"),
    absent: str | None = typer.Option(None, "--absent", help="fire when no data came for this long (5m)"),
    rate_increase: float | None = typer.Option(None, "--rate-increase", help="fire when a counter grows faster than X per second"),
    for_: str = typer.Option("0s", "--for", help="the condition must hold this long before firing (1m)"),
    cooldown: str = typer.Option("10m", "--cooldown", help="least time between two firing notifications of one alert"),
    severity: str = typer.Option("warning", "--severity", help=f"one of {', '.join(SEVERITIES)}"),
    channel: list[str] = typer.Option([], "--channel", help="notification channel name (repeatable)"),
    disabled: bool = typer.Option(False, "--disabled", help="add the rule switched off"),
    force: bool = typer.Option(False, "--force", help="do not check --device against the inventory"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Add an alert rule: one of --above, --below, --absent or --rate-increase.

    A --device not in the inventory is added with a warning naming it (the rule matches nothing until
    that device exists); --force skips the check.

    Example: swtel alert rule add cpu-high --tag site=dc1 --path /system/cpus/cpu[index=*]/state/total/instant --above 90 --for 5m --channel ops
    """
    given = {k: v for k, v in (("above", above), ("below", below), ("absent", absent),
                               ("rate_increase", rate_increase)) if v is not None}
    if len(given) != 1:
        raise InvalidInput("give exactly one of --above X, --below X, --absent DURATION or --rate-increase X")
    (condition, raw), = given.items()
    threshold = parse_duration(raw, "--absent") if condition == "absent" else float(raw)
    rule = Rule(
        name=name, device=device, tags=parse_selector_tags(tag), path=path, condition=condition,
        threshold=threshold, for_s=parse_duration(for_, "--for"), cooldown_s=parse_duration(cooldown, "--cooldown"),
        severity=severity, channels=channel, enabled=not disabled,  # type: ignore[arg-type]
    )
    validate(rule)  # before connecting: a typo is reported even when the database is down
    added = _with_db(ctx, dsn, lambda conn: db.add_rule(conn, rule))
    if device is not None and not force:
        _warn_unknown_device(ctx, device)
    to = f" → {', '.join(added.channels)}" if added.channels else " (no channels: recorded, not notified)"
    _say(f"added rule {added.name}: {added.selector()} {added.path} {added.describe()}"
         f" for {format_duration(added.for_s)}, {added.severity}{to}")


@rule_app.command("list")
def rule_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """List alert rules.

    Example: swtel alert rule list --json
    """
    rules = _with_db(ctx, dsn, db.list_rules)
    if json_out:
        common.print_json([msgspec.structs.asdict(r) for r in rules])  # every field, defaults too
        return
    _table(
        ["NAME", "SELECTOR", "PATH", "CONDITION", "FOR", "COOLDOWN", "SEVERITY", "CHANNELS", "ENABLED"],
        [(r.name, r.selector(), r.path, r.describe(), format_duration(r.for_s), format_duration(r.cooldown_s),
          r.severity, ",".join(r.channels), "yes" if r.enabled else "no") for r in rules],
        empty="no alert rules: add one with `swtel alert rule add`",
    )


@rule_app.command("remove")
def rule_remove(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Remove a rule and its alerts (their history stays).

    Example: swtel alert rule remove cpu-high
    """
    _with_db(ctx, dsn, lambda conn: db.remove_rule(conn, name))
    _say(f"removed rule {name}")


def _warn_unknown_device(ctx: typer.Context, device: str) -> None:
    """A rule on a device the inventory does not know is most likely a typo: say so (the rule stays)."""
    from swtel.shared.errors import NotFound, SwtelError

    s = common.settings(ctx)

    async def go() -> str | None:
        async with common.inventory(s) as inv:
            try:
                await inv.get(device)
            except NotFound:
                return (f"warning: device {device!r} is not in the inventory: the rule matches nothing until a device "
                        "of that name is added (--force skips this check)")
        return None

    try:
        note = common.run(go())
    except SwtelError as e:
        note = f"warning: could not check device {device!r} against the inventory: {e}"
    if note:
        common.err_console.print(note, style="yellow", markup=False, highlight=False, soft_wrap=True)


# ---- channels ------------------------------------------------------------------------------------------


@channel_app.command("add")
def channel_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="channel name, used by rules' --channel"),
    webhook: str | None = typer.Option(None, "--webhook", help="POST alerts as JSON to this URL (or env:VARIABLE)"),
    slack: str | None = typer.Option(None, "--slack", help="Slack-compatible incoming-webhook URL (or env:VARIABLE, recommended: the URL holds a token)"),
    email: list[str] = typer.Option([], "--email", help="recipient address (repeatable)"),
    smtp: str | None = typer.Option(None, "--smtp", help="SMTP server HOST[:PORT] (default port 25)"),
    smtp_user: str | None = typer.Option(None, "--smtp-user", help="SMTP login name"),
    smtp_password_env: str | None = typer.Option(None, "--smtp-password-env", help="environment variable holding the SMTP password on the hub"),
    sender: str = typer.Option("swtel@localhost", "--from", help="sender address of alert emails"),
    starttls: bool | None = typer.Option(None, "--starttls/--no-starttls", help="require or refuse STARTTLS (default: when offered)"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Add a notification channel: --webhook URL, --slack URL, or --email ADDR --smtp HOST[:PORT].

    Example: swtel alert channel add ops --slack env:SLACK_WEBHOOK_URL
    """
    kinds = [k for k, v in (("webhook", webhook), ("slack", slack), ("email", email)) if v]
    if len(kinds) != 1:
        raise InvalidInput("give exactly one of --webhook URL, --slack URL or --email ADDR")
    kind = kinds[0]
    config: dict[str, Any]
    if kind == "email":
        if not smtp:
            raise InvalidInput("--email needs --smtp HOST[:PORT]")
        host, port = parse_hostport(smtp)
        config = {"to": email, "from": sender, "host": host, "port": port, "starttls": starttls}
        if smtp_user:
            config["username"] = smtp_user
        if smtp_password_env:
            config["password_env"] = smtp_password_env
    else:
        url = str(webhook or slack)
        if not url.startswith("env:") and "://" not in url:  # not echoed: a URL's path may hold a token
            raise InvalidInput(f"--{kind} needs a URL like https://HOST/PATH or env:VARIABLE; "
                               "the value given has no scheme (http:// or https://)")
        config = {"url": url}
    validate_channel(kind, config)  # before connecting: a typo is reported even when the database is down
    _with_db(ctx, dsn, lambda conn: db.add_channel(conn, name, kind, config))
    _say(f"added {kind} channel {name}: {redacted(kind, config)}")


@channel_app.command("list")
def channel_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """List channels (URLs shown without their path: it may hold a token).

    Example: swtel alert channel list
    """
    rows = _with_db(ctx, dsn, db.list_channels)
    if json_out:
        common.print_json([{"name": n, "kind": k, "target": redacted(k, c)} for n, k, c in rows])
        return
    _table(["NAME", "KIND", "TARGET"], [(n, k, redacted(k, c)) for n, k, c in rows],
                       empty="no channels: add one with `swtel alert channel add`")


@channel_app.command("remove")
def channel_remove(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Remove a channel no rule uses.

    Example: swtel alert channel remove ops
    """
    _with_db(ctx, dsn, lambda conn: db.remove_channel(conn, name))
    _say(f"removed channel {name}")


# ---- alerts --------------------------------------------------------------------------------------------


@app.command("list")
def alert_list(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    all_: bool = typer.Option(False, "--all", help="include resolved alerts"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Firing and pending alerts (with --all also resolved ones).

    Example: swtel alert list --all --json
    """
    alerts = _with_db(ctx, dsn, lambda conn: db.list_alerts(conn, include_all=all_))
    if json_out:
        common.print_json(msgspec.to_builtins(alerts))
        return
    _table(
        ["ID", "STATE", "SEVERITY", "RULE", "DEVICE", "PATH", "VALUE", "CONDITION", "SINCE", "ACK"],
        [(a.id, a.state, a.severity, a.rule, a.device, a.path, "" if a.value is None else f"{a.value:g}",
          a.condition, a.since[:19].replace("T", " "), a.acked_by or "") for a in alerts],
        empty="no alerts",
    )


@app.command("ack")
def alert_ack(
    ctx: typer.Context,
    alert_id: int = typer.Argument(..., metavar="ID", help="alert id from `swtel alert list`"),
    by: str | None = typer.Option(None, "--by", help="who acknowledges (default: your login name)"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Acknowledge a firing alert.

    Example: swtel alert ack 42 --by alice
    """
    who = by or getpass.getuser()
    _with_db(ctx, dsn, lambda conn: db.acknowledge(conn, alert_id, who))
    _say(f"acknowledged alert {alert_id} as {who}")


@app.command("history")
def alert_history(
    ctx: typer.Context,
    alert_id: int | None = typer.Option(None, "--id", help="only this alert"),
    limit: int = typer.Option(50, "--limit", min=1, max=10000),
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Transitions and acknowledgements, newest first.

    Example: swtel alert history --id 42 --limit 20
    """
    rows = _with_db(ctx, dsn, lambda conn: db.history(conn, alert_id=alert_id, limit=limit))
    if json_out:
        common.print_json(msgspec.to_builtins(rows))
        return
    _table(
        ["AT", "ID", "RULE", "DEVICE", "PATH", "FROM", "TO", "VALUE", "DETAIL"],
        [(h.at[:19].replace("T", " "), h.alert_id, h.rule, h.device, h.path, h.from_state, h.to_state,
          "" if h.value is None else f"{h.value:g}", h.detail) for h in rows],
        empty="no alert history",
    )


@app.command("outbox")
def alert_outbox(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="print a JSON array"),
    dsn: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Notifications and their delivery status (pending, sending, sent, failed), newest first.

    Example: swtel alert outbox
    """
    rows = _with_db(ctx, dsn, db.outbox)
    if json_out:
        common.print_json(msgspec.to_builtins(rows))
        return
    _table(
        ["ID", "ALERT", "RULE", "KIND", "CHANNEL", "STATUS", "ATTEMPTS", "NEXT", "LAST ERROR"],
        [(o.id, o.alert_id, o.rule, o.kind, o.channel, o.status, o.attempts,
          o.next_attempt_at[:19].replace("T", " ") if o.status == "pending" else "", o.last_error) for o in rows],
        empty="no notifications",
    )
