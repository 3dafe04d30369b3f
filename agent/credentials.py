"""Resolve a device's credential reference on the agent host; the inventory holds only the reference.

Looked up in this order (the first hit wins):

1. ``$CREDENTIALS_DIRECTORY/<ref>`` — systemd ``LoadCredential=``/``SetCredentialEncrypted=``. The file is
   ``username:password`` on one line, or TOML (``username = …``, ``password = …``, optional ``tls_ca``,
   ``tls_cert``, ``tls_key``, ``ssh_key`` file paths, optional ``enable_secret`` for the SSH CLI's ``enable``). A ``/`` in the reference becomes ``_`` in the file name.
2. Environment ``SWTEL_CRED_<REF>_USERNAME`` and ``SWTEL_CRED_<REF>_PASSWORD`` (``<REF>`` upper-cased,
   every character other than a letter or digit replaced by ``_``); for SNMP ``_COMMUNITY`` (v2c), or
   ``_USERNAME`` with ``_AUTH_PROTOCOL``, ``_AUTH_PASSWORD``, ``_PRIV_PROTOCOL``, ``_PRIV_PASSWORD`` (v3); optional ``_ENABLE_SECRET`` for SSH ``enable``.
3. The ``secrets_file`` setting: TOML with one table per reference, ``[ref]`` (quote it, ``["dc1/core"]``,
   if it has dots or slashes) holding ``username``, ``password``, the optional TLS paths and ``enable_secret``.

SNMP keys in TOML: ``community`` (v2c), or ``username`` with ``auth_protocol`` (md5, sha, sha224, sha256,
sha384, sha512), ``auth_password``, ``priv_protocol`` (des, aes, aes192, aes256) and ``priv_password`` (v3).

Secrets never appear in errors, logs or reprs: errors name the reference and where it was looked for.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swtel.agent.collectors.base import Credential
from swtel.shared.errors import InvalidInput, NotFound

_TLS_KEYS = ("tls_ca", "tls_cert", "tls_key", "ssh_key")  # optional file paths
_SNMP_KEYS = ("community", "auth_protocol", "auth_password", "priv_protocol", "priv_password")
AUTH_PROTOCOLS = ("md5", "sha", "sha1", "sha224", "sha256", "sha384", "sha512")
PRIV_PROTOCOLS = ("des", "aes", "aes128", "aes192", "aes256")


def _snmp(ref: str, where: str, values: Mapping[str, Any]) -> dict[str, str]:
    """The SNMP settings among ``values``, checked (the protocols' names, never the secrets, in errors)."""
    out: dict[str, str] = {}
    for k in _SNMP_KEYS:
        v = values.get(k)
        if v is None:
            continue
        if not isinstance(v, str):
            raise InvalidInput(f"credential {ref!r} in {where}: {k} must be a string")
        out[k] = v
    for k, allowed in (("auth_protocol", AUTH_PROTOCOLS), ("priv_protocol", PRIV_PROTOCOLS)):
        if k in out:
            out[k] = out[k].strip().lower().replace("-", "")
            if out[k] not in allowed:
                raise InvalidInput(f"credential {ref!r} in {where}: {k} must be one of {', '.join(allowed)}")
    if out.get("priv_password") and not out.get("auth_password"):
        raise InvalidInput(f"credential {ref!r} in {where}: SNMPv3 privacy needs authentication (auth_password)")
    return out


class CredentialNotFound(NotFound):
    """No source defines the reference."""


def env_prefix(ref: str) -> str:
    return "SWTEL_CRED_" + re.sub(r"[^A-Za-z0-9]", "_", ref).upper()


def _from_mapping(ref: str, data: Any, where: str) -> Credential:
    if not isinstance(data, dict) or not (isinstance(data.get("username"), str) or isinstance(data.get("community"), str)):
        raise InvalidInput(f"credential {ref!r} in {where} has no username (nor an SNMP community)")
    username = data.get("username", "")
    if not isinstance(username, str):
        raise InvalidInput(f"credential {ref!r} in {where}: username must be a string")
    password = data.get("password", "")
    if not isinstance(password, str):
        raise InvalidInput(f"credential {ref!r} in {where}: password must be a string")
    tls = {k: str(data[k]) for k in _TLS_KEYS if data.get(k)}
    secret = data.get("enable_secret")
    if secret is not None and not isinstance(secret, str):
        raise InvalidInput(f"credential {ref!r} in {where}: enable_secret must be a string")
    return Credential(username=username, password=password, enable_secret=secret, **tls, **_snmp(ref, where, data))


def _from_file(ref: str, path: Path) -> Credential:
    try:
        text = path.read_text()
    except OSError as e:
        raise InvalidInput(f"credential {ref!r}: cannot read {path}: {e.strerror}") from None
    first = text.strip()
    if "\n" not in first and "=" not in first and ":" in first:  # username:password
        user, _, password = first.partition(":")
        return Credential(username=user, password=password)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # Do not echo the parser's message: it quotes the file, which holds the secret.
        raise InvalidInput(f"credential {ref!r}: {path} is neither username:password nor TOML") from None
    return _from_mapping(ref, data, str(path))


class Credentials:
    """One per agent; the secrets file is re-read when it changes (mtime), not per device."""

    def __init__(self, secrets_file: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.secrets_file = Path(secrets_file) if secrets_file else None
        self.env = os.environ if env is None else env
        self._cache: tuple[float, dict[str, Any]] | None = None

    def resolve(self, ref: str | None) -> Credential | None:
        """The credential for ``ref`` (``None`` for a device without one)."""
        if ref is None:
            return None
        tried = []
        cred_dir = self.env.get("CREDENTIALS_DIRECTORY")
        if cred_dir:
            path = Path(cred_dir) / ref.replace("/", "_")
            if path.is_file():
                return _from_file(ref, path)
            tried.append(f"{path}")
        prefix = env_prefix(ref)
        if f"{prefix}_USERNAME" in self.env or f"{prefix}_COMMUNITY" in self.env:
            snmp = {k: self.env[f"{prefix}_{k.upper()}"] for k in _SNMP_KEYS if f"{prefix}_{k.upper()}" in self.env}
            return Credential(username=self.env.get(f"{prefix}_USERNAME", ""),
                              password=self.env.get(f"{prefix}_PASSWORD", ""),
                              enable_secret=self.env.get(f"{prefix}_ENABLE_SECRET"),
                              **_snmp(ref, f"${prefix}_*", snmp))
        tried.append(f"${prefix}_USERNAME")
        if self.secrets_file is not None:
            table = self._secrets().get(ref)
            if table is None and "." in ref:  # an unquoted [a.b] header nests tables
                table = self._secrets()
                for part in ref.split("."):
                    table = table.get(part) if isinstance(table, dict) else None
            if table is not None:
                return _from_mapping(ref, table, str(self.secrets_file))
            tried.append(f"[{ref}] in {self.secrets_file}")
        raise CredentialNotFound(f"credential {ref!r} is not defined (looked in {', '.join(tried)})")

    def _secrets(self) -> dict[str, Any]:
        assert self.secrets_file is not None
        try:
            mtime = self.secrets_file.stat().st_mtime
        except OSError as e:
            raise InvalidInput(f"cannot read secrets file {self.secrets_file}: {e.strerror}") from None
        if self._cache is None or self._cache[0] != mtime:
            try:
                data = tomllib.loads(self.secrets_file.read_text())
            except OSError as e:
                raise InvalidInput(f"cannot read secrets file {self.secrets_file}: {e.strerror}") from None
            except tomllib.TOMLDecodeError:
                raise InvalidInput(f"secrets file {self.secrets_file} is not valid TOML") from None
            self._cache = (mtime, data)
        return self._cache[1]
