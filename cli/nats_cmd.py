"""``swtel nats init``: create or check the KV buckets and streams; ``nats passwd`` and ``nats nkey``: user
secrets for the server's accounts file (nats/accounts.conf, nats/accounts-nkeys.conf)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from nats.js.errors import APIError

from swtel.shared import buckets
from swtel.shared.errors import ServerUnavailable

from . import common, nats_auth

app = typer.Typer(help="NATS JetStream bootstrap and user secrets.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    replicas: int = typer.Option(1, "--replicas", help="1 for a single server, 3 for a cluster", min=1, max=5),
    check: bool = typer.Option(False, "--check", help="only report, create nothing"),
    json_out: bool = typer.Option(False, "--json", help="print the outcome as JSON"),
) -> None:
    """Create the buckets swtel_devices, swtel_agents, swtel_leases, swtel_hubs, swtel_outputs and the streams, or check them (idempotent).

    An existing bucket or stream with an incompatible configuration is reported and left unchanged.

    Example: swtel nats init --replicas 3
    """
    if replicas not in (1, 3, 5):
        raise typer.BadParameter("use 1, 3 or 5 replicas", param_hint="--replicas")
    s = common.settings(ctx, nats_replicas=replicas)

    async def go() -> tuple[list[buckets.Outcome], bool, str]:
        async with common.connection(s) as nc:
            js = nc.jetstream(timeout=5)
            version = nc.connected_server_version
            markers = buckets.server_supports_markers(version)
            try:
                outcomes = await buckets.ensure(js, buckets.specs(s, replicas=replicas, markers=markers),
                                                check_only=check)
            except APIError as e:  # e.g. 10005 (fewer servers online than --replicas), 10074 (not a cluster)
                raise ServerUnavailable(f"NATS refused to create a bucket or stream with {replicas} replica(s): "
                                        f"{e.description} (are all cluster nodes up and routed?)") from None
            return outcomes, markers, f"{version.major}.{version.minor}.{version.patch}"

    outcomes, markers, version = common.run(go())
    missing = check and any(o.action == "missing" for o in outcomes)
    if json_out:
        common.print_json([{"name": o.name, "kind": o.kind, "action": o.action, "detail": o.detail} for o in outcomes])
        raise typer.Exit(1 if missing else 0)
    common.print_table(["KIND", "NAME", "RESULT"], [(o.kind, o.name, o.action) for o in outcomes])
    if not markers:
        common.err_console.print(
            f"[yellow]nats-server {version} does not signal KV expiry (needs 2.11+): agents fall back to polling, "
            "and failover is slower.[/yellow]"
        )
    if missing:
        raise typer.Exit(1)


@app.command("passwd")
def passwd(
    generate: bool = typer.Option(False, "--generate", help="make a random password instead of asking for one"),
    out: Path | None = typer.Option(None, "--out", help="write the password to this new file (mode 0600), e.g. for LoadCredential="),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from the first line of standard input"),
    stdin_old: bool = typer.Option(False, "--stdin", hidden=True, help="deprecated: use --password-stdin"),
    cost: int = typer.Option(nats_auth.DEFAULT_COST, "--cost", min=10, max=16, help="bcrypt cost"),
) -> None:
    """Print a bcrypt hash of a NATS user password, for a `password:` line in nats/accounts.conf.

    The server stores only the hash. The client gets the password itself from SWTEL_NATS_PASSWORD or,
    better, from a file named by SWTEL_NATS_PASSWORD_FILE (a systemd credential).

    Example: swtel nats passwd --generate --out /etc/swtel/nats-agent.pass
    """
    if stdin_old:
        common.err_console.print("[yellow]--stdin is deprecated: use --password-stdin (as `swtel user add` does)[/yellow]")
    from_stdin = password_stdin or stdin_old
    if generate and from_stdin:
        raise typer.BadParameter("use either --generate or --password-stdin", param_hint="--generate")
    if generate:
        password = nats_auth.generate_password()
    else:
        password = common.read_password(from_stdin).rstrip("\r")
    hashed = nats_auth.hash_password(password, cost)
    if out is not None:
        nats_auth.write_secret(out, password)
        common.err_console.print(f"password written to {out}", highlight=False)
    elif generate:
        common.err_console.print("[yellow]the generated password is shown once; store it now[/yellow]")
        common.console.print(f"password: {password}", highlight=False, soft_wrap=True)
    common.console.print(hashed, highlight=False, soft_wrap=True)


@app.command("nkey")
def nkey(
    seed_file: Path = typer.Option(..., "--seed-file", help="new file (mode 0600) for the secret seed, for SWTEL_NATS_NKEY"),
) -> None:
    """Make a NATS user nkey pair: write the seed to a new file and print the public key (U…).

    The public key goes into nats/accounts-nkeys.conf (through SWTEL_NATS_<ROLE>_NKEY); the seed stays
    with the client (setting nats_nkey, ideally a systemd credential).

    Example: swtel nats nkey --seed-file /etc/swtel/agent.nk
    """
    seed, public = nats_auth.new_user_nkey()
    nats_auth.write_secret(seed_file, seed)
    common.err_console.print(f"seed written to {seed_file}", highlight=False)
    common.console.print(public, highlight=False, soft_wrap=True)
