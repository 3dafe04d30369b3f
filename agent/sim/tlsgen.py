"""Throw-away TLS material for the simulator and tests: a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate, all signed by that CA (EC P-256, valid one day)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Material:
    ca_cert: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def write(self, folder: Path) -> dict[str, Path]:
        """Write the PEM files (keys mode 0600) and return their paths by role."""
        folder.mkdir(parents=True, exist_ok=True)
        out = {}
        for role in ("ca_cert", "server_cert", "server_key", "client_cert", "client_key"):
            path = folder / f"{role.replace('_', '-')}.pem"
            path.write_bytes(getattr(self, role))
            if role.endswith("key"):
                path.chmod(0o600)
            out[role] = path
        return out


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def generate(server_name: str = "swtel-sim") -> Material:
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("swtel-sim-ca", ca_key, None, ca_key, ca=True)
    sans: list[x509.GeneralName] = [x509.DNSName(server_name), x509.DNSName("localhost"),
                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = _cert(server_name, server_key, ca.subject, ca_key, ca=False, sans=sans)
    client = _cert("swtel-agent", client_key, ca.subject, ca_key, ca=False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    return Material(pem(ca), pem(server), _pem_key(server_key), pem(client), _pem_key(client_key))
