"""Notifications reach a real local webhook receiver and a real SMTP sink (aiosmtpd), and are retried."""

from __future__ import annotations

import asyncio
import email
import logging

import asyncpg
import pytest

from support.alertdb import alert_pool
from support.receivers import SmtpSink, WebhookReceiver
from support.waits import eventually
from swtel.hub.alerts import db
from swtel.hub.alerts.channels import redacted
from swtel.hub.alerts.engine import Engine
from swtel.hub.alerts.notify import Notifier
from swtel.hub.alerts.rules import Rule
from swtel.hub.alerts.sources import LiveSource
from swtel.shared import wire

T0 = 1_800_000_000.0
CPU = "/system/cpus/cpu[index=0]/state/total/instant"


def fast_notifier(pool: asyncpg.Pool, **kw) -> Notifier:
    kw.setdefault("backoff_base_s", 0.05)
    return Notifier(pool, poll_s=0.05, send_timeout_s=2.0, **kw)


async def fire_and_resolve(pool: asyncpg.Pool, channels: list[str], notifier: Notifier | None = None) -> None:
    src = LiveSource([wire.Device(name="sw1", address="127.0.0.1", port=9339, protocol="gnmi")])
    async with pool.acquire() as conn:
        await db.add_rule(conn, Rule(name="cpu-high", device="sw1", path=CPU, condition="above", threshold=90,
                                     severity="critical", channels=channels))
    eng = Engine(pool, src, on_notify=notifier.wake if notifier else None)
    src.observe("sw1", CPU, 97, T0)
    await eng.evaluate_once(T0)
    src.observe("sw1", CPU, 12, T0 + 60)
    await eng.evaluate_once(T0 + 60)


async def outbox_rows(pool: asyncpg.Pool) -> list[tuple[str, str, int]]:
    return [tuple(r) for r in await pool.fetch("SELECT kind, status, attempts FROM alert_outbox ORDER BY id")]


@pytest.mark.asyncio
async def test_webhook_and_slack_receive_firing_then_resolved(database_url: str) -> None:
    hook, slack = await WebhookReceiver().start(), await WebhookReceiver().start()
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url + "/alerts"})
            await db.add_channel(conn, "chat", "slack", {"url": slack.url + "/services/T0/B0/tok"})
        notifier = fast_notifier(pool)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(notifier.run())
            await fire_and_resolve(pool, ["hook", "chat"], notifier)
            await eventually(lambda: _ready(len(hook.received) == 2 and len(slack.received) == 2), timeout=10,
                             what="two webhook and two Slack deliveries")
            notifier.close()
    assert [r.body["state"] for r in hook.received] == ["firing", "resolved"]
    first = hook.received[0]
    assert first.path == "/alerts" and first.body["rule"] == "cpu-high" and first.body["device"] == "sw1"
    assert first.body["severity"] == "critical" and first.body["value"] == 97 and first.body["path"] == CPU
    assert first.headers["idempotency-key"].startswith("swtel-alert-")
    assert slack.received[0].path == "/services/T0/B0/tok"
    assert set(slack.received[0].body) == {"text"}
    assert slack.received[0].body["text"].startswith("[CRITICAL] FIRING cpu-high on sw1")
    assert "RESOLVED" in slack.received[1].body["text"]
    await hook.stop()
    await slack.stop()


async def _ready(value: bool) -> bool:
    return value


@pytest.mark.asyncio
async def test_deliveries_are_retried_while_the_receiver_is_down_and_arrive_once_it_is_back(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    hook = await WebhookReceiver().start()
    await hook.stop()  # connection refused from now on
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url + "/h"})
        notifier = fast_notifier(pool, max_attempts=50)
        with caplog.at_level(logging.WARNING, logger="swtel.hub.alerts"):
            await fire_and_resolve(pool, ["hook"])
            for _ in range(3):  # three refused attempts, each pushing the next attempt further out
                await eventually(lambda: _due(pool), timeout=5, what="an outbox row to be due")
                assert await notifier.deliver_once() == 2
            rows = await pool.fetch("SELECT status, attempts, last_error, next_attempt_at - now() AS wait "
                                    "FROM alert_outbox ORDER BY id")
            assert [(r["status"], r["attempts"]) for r in rows] == [("pending", 3), ("pending", 3)]
            assert "ConnectError" in rows[0]["last_error"]
            assert rows[0]["wait"].total_seconds() > 0.1  # 0.05 × 2² backoff after the third failure
            assert "attempt 3/50" in caplog.text
            # now the receiver answers, but with errors: still retried
            hook.status = 503
            await hook.start()
            await eventually(lambda: _due(pool), timeout=5, what="an outbox row to be due")
            await notifier.deliver_once()
            assert "HTTP 503" in (await pool.fetchval("SELECT last_error FROM alert_outbox ORDER BY id LIMIT 1"))
            hook.status = 200
            async with asyncio.TaskGroup() as tg:
                tg.create_task(notifier.run())
                await eventually(lambda: _ready(len(hook.received) == 2), timeout=10, what="both deliveries")
                notifier.close()
        assert [r.body["state"] for r in hook.received] == ["firing", "resolved"]
        assert [s for _, s, _ in await outbox_rows(pool)] == ["sent", "sent"]
    await hook.stop()


async def _due(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval(
        "SELECT count(*) FROM alert_outbox WHERE status = 'pending' AND next_attempt_at <= now()"))


@pytest.mark.asyncio
async def test_gives_up_after_max_attempts_and_shows_failed(database_url: str) -> None:
    hook = await WebhookReceiver(status=500).start()
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url})
        notifier = fast_notifier(pool, max_attempts=3, backoff_base_s=0.01)
        await fire_and_resolve(pool, ["hook"])
        async with asyncio.TaskGroup() as tg:
            tg.create_task(notifier.run())
            await eventually(lambda: _all_failed(pool), timeout=10, what="both rows failed")
            notifier.close()
        assert await outbox_rows(pool) == [("firing", "failed", 3), ("resolved", "failed", 3)]
        # a channel gets its notifications in order: "resolved" waited behind the failing "firing" each round
        assert hook.attempts == 3
        async with pool.acquire() as conn:
            views = {v.kind: v for v in await db.outbox(conn)}
        assert {v.status for v in views.values()} == {"failed"} and views["firing"].last_error.startswith("HTTP 500")
        assert views["resolved"].last_error.startswith("not sent: waits for an earlier one (HTTP 500")
    await hook.stop()


async def _all_failed(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT bool_and(status = 'failed') FROM alert_outbox") is True


@pytest.mark.asyncio
async def test_a_claim_left_by_a_dead_notifier_is_delivered_by_another(database_url: str) -> None:
    hook = await WebhookReceiver().start()
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url})
        await fire_and_resolve(pool, ["hook"])
        # a notifier claimed both rows and died before sending: they stay 'sending' until the lock ends
        await pool.execute("UPDATE alert_outbox SET status = 'sending', attempts = 1, "
                           "locked_until = now() + interval '300 milliseconds'")
        other = fast_notifier(pool)
        assert await other.deliver_once() == 0, "a live claim must not be taken"
        await eventually(lambda: _lock_expired(pool), timeout=5, what="the dead claim to expire")
        assert await other.deliver_once() == 2
        await other.sender.close()
        assert await outbox_rows(pool) == [("firing", "sent", 2), ("resolved", "sent", 2)]
        assert len(hook.received) == 2
    await hook.stop()


async def _lock_expired(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT bool_and(locked_until < now()) FROM alert_outbox"))


@pytest.mark.asyncio
async def test_email_via_smtp_with_a_password_from_the_environment_that_never_leaks(
        database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-Pa55-word"
    slack_token = "T000/B000/XXXXsecrettoken"
    monkeypatch.setenv("SWTEL_TEST_SMTP_PASSWORD", secret)
    slack = await WebhookReceiver().start()
    monkeypatch.setenv("SWTEL_TEST_SLACK_URL", f"{slack.url}/services/{slack_token}")
    monkeypatch.setenv("SWTEL_TEST_DEAD_URL", f"http://127.0.0.1:9/services/{slack_token}")  # nothing listens
    sink = SmtpSink(username="alerts", password=secret).start()
    try:
        async with alert_pool(database_url) as pool:
            cfg = {"to": ["noc@example.com", "oncall@example.com"], "from": "swtel@example.com",
                   "host": "127.0.0.1", "port": sink.port, "username": "alerts",
                   "password_env": "SWTEL_TEST_SMTP_PASSWORD", "starttls": False}
            async with pool.acquire() as conn:
                await db.add_channel(conn, "mail", "email", cfg)
                await db.add_channel(conn, "chat", "slack", {"url": "env:SWTEL_TEST_SLACK_URL"})
                await db.add_channel(conn, "dead", "slack", {"url": "env:SWTEL_TEST_DEAD_URL"})
            notifier = fast_notifier(pool, max_attempts=2)
            with caplog.at_level(logging.DEBUG):
                await fire_and_resolve(pool, ["mail", "chat", "dead"])
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(notifier.run())
                    await eventually(lambda: _ready(len(sink.messages) == 2), timeout=10, what="two emails")
                    await eventually(lambda: _ready(len(slack.received) == 2), timeout=10, what="two Slack posts")
                    await eventually(lambda: _dead_failed(pool), timeout=10, what="the dead channel's rows to fail")
                    notifier.close()
            assert sink.logins == ["alerts", "alerts"]
            mail_from, rcpts, content = sink.messages[0]
            msg = email.message_from_bytes(content)
            assert mail_from == "swtel@example.com" and rcpts == ["noc@example.com", "oncall@example.com"]
            assert msg["Subject"].startswith("[CRITICAL] FIRING cpu-high on sw1")
            stored = " ".join(str(tuple(r)) for r in await pool.fetch("SELECT * FROM alert_outbox"))
            stored += " ".join(str(tuple(r)) for r in await pool.fetch("SELECT * FROM alert_channels"))
            async with pool.acquire() as conn:
                shown = " ".join(redacted(k, c) for _, k, c in await db.list_channels(conn))
    finally:
        sink.stop()
        await slack.stop()
    assert "HTTP Request: POST" in caplog.text, "httpx's request log was not captured: the check below is moot"
    for where, text in (("logs", caplog.text), ("database", stored), ("channel list", shown)):
        assert secret not in text, f"SMTP password in {where}"
        assert slack_token not in text and "secrettoken" not in text, f"Slack token in {where}"
    assert "ConnectError" in stored  # the Slack failure was recorded, scrubbed


async def _dead_failed(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT bool_and(status = 'failed') FROM alert_outbox WHERE channel = 'dead'") is True


@pytest.mark.asyncio
async def test_alert_service_evaluates_periodically_and_notifies_until_closed(database_url: str) -> None:
    import time

    from swtel.hub.alerts.service import AlertService

    hook = await WebhookReceiver().start()
    src = LiveSource([wire.Device(name="sw1", address="127.0.0.1", port=9339, protocol="gnmi")])
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url})
            await db.add_rule(conn, Rule(name="cpu-high", device="sw1", path=CPU, condition="above", threshold=90,
                                         channels=["hook"]))
        service = AlertService(pool, src, interval_s=0.05, notifier=fast_notifier(pool))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.run())
            src.observe("sw1", CPU, 95, time.time())
            await eventually(lambda: _ready(len(hook.received) == 1), timeout=10, what="the firing notification")
            src.observe("sw1", CPU, 5, time.time())
            await eventually(lambda: _ready(len(hook.received) == 2), timeout=10, what="the resolved notification")
            service.close()
        assert [r.body["state"] for r in hook.received] == ["firing", "resolved"]
    await hook.stop()


@pytest.mark.asyncio
async def test_a_channel_gets_its_notifications_in_order_across_retries(database_url: str) -> None:
    hook = await WebhookReceiver(status=500).start()
    async with alert_pool(database_url) as pool:
        async with pool.acquire() as conn:
            await db.add_channel(conn, "hook", "webhook", {"url": hook.url})
        notifier = fast_notifier(pool, backoff_base_s=0.5)
        await fire_and_resolve(pool, ["hook"])
        # the firing notification failed once and waits for its retry; the resolved one is due meanwhile
        await pool.execute("UPDATE alert_outbox SET status = 'pending', attempts = 1, "
                           "next_attempt_at = now() + interval '1 hour' WHERE kind = 'firing'")
        assert await notifier.deliver_once() == 0, "the resolved notification overtook its firing"
        await pool.execute("UPDATE alert_outbox SET next_attempt_at = now() WHERE kind = 'firing'")
        hook.status = 200
        assert await notifier.deliver_once() == 2
        assert [r.body["state"] for r in hook.received] == ["firing", "resolved"]
    await hook.stop()
