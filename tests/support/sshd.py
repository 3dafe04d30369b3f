"""A private OpenSSH ``sshd`` for tests and benches: unprivileged config on a free loopback port, a host key
and a client key generated for the run, key login for the user running it (no system account or password
is touched). Used by ``netconfd.py`` (the ``netconf`` subsystem) and ``bench/agent/ssh.py --server openssh``
(a CLI emulator as ``ForceCommand``).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

SSHD = "/usr/sbin/sshd"


@dataclass
class SshdFiles:
    port: int
    username: str
    key_file: str  # the client's private key
    known_hosts: str  # the sshd's host key, as a known_hosts file
    config: str  # sshd_config

    def command(self) -> list[str]:
        """sshd in the foreground, logging to stderr."""
        return [SSHD, "-D", "-e", "-f", self.config]


def write_sshd(tmp: Path, port: int, extra: str = "") -> SshdFiles:
    """Keys and an ``sshd_config`` in ``tmp`` for sshd on 127.0.0.1:``port``; ``extra``: more config lines."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(tmp / "host_key"))
    (tmp / "host_key").chmod(0o600)
    client = asyncssh.generate_private_key("ssh-ed25519")
    client.write_private_key(str(tmp / "client_key"))
    (tmp / "client_key").chmod(0o600)
    client.write_public_key(str(tmp / "authorized_keys"))
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"StrictModes no\nUsePAM no\nLogLevel ERROR\n{extra}")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege-separation directory
    return SshdFiles(port, getpass.getuser(), str(tmp / "client_key"), str(tmp / "known_hosts"),
                     str(tmp / "sshd_config"))
