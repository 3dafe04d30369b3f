"""Making NATS user secrets: bcrypt password hashes and nkey pairs for nats/accounts*.conf.

The server config holds only the hash or the public key; the password or seed goes into a file that
systemd hands to the service (LoadCredential=). Files are created 0600 and never overwritten, so a
mistyped path cannot destroy a secret that hosts already use.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import bcrypt
import nkeys

from swtel.shared.errors import AlreadyExists, InvalidInput

MIN_PASSWORD_LENGTH = 12
DEFAULT_COST = 11  # nats-server's own `nats server passwd` default


def hash_password(password: str, cost: int = DEFAULT_COST) -> str:
    """A bcrypt hash nats-server accepts in a ``password:`` field."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > 72:
        raise InvalidInput("the password is longer than 72 bytes, which bcrypt cannot use")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def generate_password() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 bits


def new_user_nkey() -> tuple[str, str]:
    """(seed, public key) of a new NATS user key pair: ``SU…`` and ``U…``."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    pair = nkeys.from_seed(bytearray(seed))
    try:
        return seed.decode(), pair.public_key.decode()
    finally:
        pair.wipe()


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; refuse to replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AlreadyExists(f"{path} exists; remove it first if you really mean to replace that secret") from None
    except OSError as e:
        raise InvalidInput(f"cannot create {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
