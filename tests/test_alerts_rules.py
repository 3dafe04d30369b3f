"""Rule validation, path patterns, selectors, counter rates and the state machine (one test uses PostgreSQL)."""

from __future__ import annotations

import pytest

from swtel.hub.alerts.rules import Rule, format_duration, parse_duration, path_matches, validate
from swtel.hub.alerts.sources import counter_rate
from swtel.hub.alerts.states import next_state
from swtel.shared.errors import InvalidInput

IF = "/interfaces/interface[name=Ethernet1/1]/state/counters/in-errors"


PATTERNS = [
    ("/interfaces/interface[name=*]/state/counters/in-errors", IF, True),
    ("/interfaces/interface[name=Ethernet1/1]/state/counters/in-errors", IF, True),
    ("/interfaces/interface[name=Ethernet2]/state/counters/in-errors", IF, False),
    ("/interfaces/interface/state/counters/in-errors", IF, True),  # no keys written: any keys
    ("/interfaces/*/state/counters/in-errors", IF, True),
    ("/interfaces/interface[name=*]/state/counters/*", IF, True),
    ("/interfaces/interface[name=*]/state/counters", IF, False),  # a prefix is not a match
    ("/interfaces/interface[name=*]/state/counters/in-errors", IF + "x", False),
    ("/a[k=v.1]/b", "/a[k=vX1]/b", False),  # key values are literal, not regular expressions
    ("/components/component[name=*][slot=*]/t", "/components/component[name=PSU1][slot=2]/t", True),
]


@pytest.mark.parametrize(("pattern", "path", "matches"), PATTERNS)
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


@pytest.mark.asyncio
async def test_path_patterns_mean_the_same_as_postgresql_regexes(database_url: str) -> None:
    """A database-backed source may filter series in SQL with ``name ~ ('^' || regex || '$')``."""
    import asyncpg

    from swtel.hub.alerts.rules import path_regex

    conn = await asyncpg.connect(database_url)
    try:
        for pattern, path, matches in PATTERNS:
            got = await conn.fetchval("SELECT $1::text ~ ('^' || $2::text || '$')", path, path_regex(pattern).pattern)
            assert got is matches, (pattern, path)
    finally:
        await conn.close()


@pytest.mark.parametrize(("kw", "message"), [
    ({"name": "bad name"}, "rule name 'bad name'"),
    ({"device": None}, "exactly one of --device NAME or --tag k=v"),
    ({"tags": {"a": "b"}}, "exactly one of --device NAME or --tag k=v"),
    ({"path": "/x]"}, "malformed"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
    ({"condition": "absent", "threshold": 0}, "--absent needs a duration above zero"),
    ({"for_s": -1}, "--for must be between 0 and 7d"),
    ({"channels": ["a b"]}, "channel name 'a b'"),
])
def test_validation_names_the_problem(kw: dict, message: str) -> None:
    base = {"name": "r", "device": "sw1", "path": "/a/b", "condition": "above", "threshold": 1.0}
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate(Rule(**{**base, **kw}))


def test_selectors_conditions_and_durations() -> None:
    tagged = validate(Rule(name="t", tags={"site": "ams", "role": "leaf"}, path="/a", condition="below", threshold=3,
                           channels=["x", "x", "y"]))
    assert tagged.channels == ["x", "y"]
    assert tagged.selects("d", {"site": "ams", "role": "leaf", "rack": "1"})
    assert not tagged.selects("d", {"site": "ams"})
    assert tagged.selector() == "role=leaf,site=ams" and tagged.describe() == "< 3"
    assert tagged.holds(2, None, None) is True and tagged.holds(3, None, None) is False
    assert tagged.holds(None, None, None) is None
    absent = Rule(name="a", device="d", path="/a", condition="absent", threshold=300)
    assert absent.holds(None, None, 301) is True and absent.holds(None, None, 10) is False
    assert absent.describe() == "no data for 5m"
    rate = Rule(name="r", device="d", path="/a", condition="rate_increase", threshold=5)
    assert rate.holds(100, 6.0, None) is True and rate.holds(100, None, None) is None
    assert parse_duration("90s", "x") == 90 and parse_duration("2m", "x") == 120 and parse_duration("0", "x") == 0
    assert format_duration(3600) == "1h" and format_duration(90) == "90s"
    with pytest.raises(InvalidInput, match="--for 'later' is not a duration"):
        parse_duration("later", "--for")


def test_counter_rate_treats_a_decrease_as_a_reset_from_zero() -> None:
    assert counter_rate(100, 0, 400, 30) == 10
    assert counter_rate(10_000, 0, 300, 30) == 10  # reset: restarted at 0 and counted 300 since
    assert counter_rate(100, 30, 200, 30) is None


@pytest.mark.parametrize(("state", "since", "cond", "now", "for_s", "expect"), [
    ("ok", 0, True, 10, 60, "pending"),
    ("ok", 0, True, 10, 0, "firing"),
    ("ok", 0, False, 10, 60, None),
    ("ok", 0, None, 10, 60, None),
    ("pending", 0, True, 59, 60, None),
    ("pending", 0, True, 60, 60, "firing"),
    ("pending", 0, False, 30, 60, "ok"),
    ("pending", 0, None, 90, 60, None),  # no data: neither fires nor clears
    ("firing", 0, True, 999, 60, None),
    ("firing", 0, None, 999, 60, None),
    ("firing", 0, False, 999, 60, "resolved"),
    ("resolved", 0, True, 10, 60, "pending"),
    ("resolved", 0, True, 10, 0, "firing"),
    ("resolved", 0, False, 10, 60, None),
    ("resolved", 0, False, 900, 60, "ok"),
])
def test_state_machine(state, since, cond, now, for_s, expect) -> None:
    assert next_state(state, since, cond, now, for_s, resolved_keep_s=900) == expect
