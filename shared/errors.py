"""The project's error hierarchy.

Every error a user can cause derives from :class:`UserError`: the CLI prints its message on one line and
exits with code 2, never a traceback. Classes also derive from the matching builtin (``ValueError``,
``LookupError``) so callers can catch broad or narrow, as nats-py does with its own errors.
"""

from __future__ import annotations


class SwtelError(Exception):
    """Base of every error raised on purpose by switch-telemetry. ``str(err)`` is meant for users."""

    exit_code = 1


class UserError(SwtelError):
    """Bad input or an environment the user must fix (unreachable server, wrong config)."""

    exit_code = 2


class InvalidInput(UserError, ValueError):
    """A value the user gave does not parse or is out of range; ``field`` names it when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(UserError, LookupError):
    """A named device, agent, user or series does not exist."""


class AlreadyExists(UserError):
    """A name is already taken."""


class ConnectFailed(UserError, ConnectionError):
    """A server (NATS, PostgreSQL) did not answer; the message names the URL tried."""


class ServerUnavailable(SwtelError):
    """A server answered the connection but not a request in time (no JetStream quorum, overload)."""


class IncompatibleConfig(UserError):
    """A bucket or stream exists with a configuration this version cannot use; it is never changed silently."""


class Conflict(SwtelError):
    """A compare-and-set lost a race (someone else wrote first)."""


class Fenced(SwtelError):
    """An agent lost its right to act (presence could not be refreshed or its claim was taken)."""
