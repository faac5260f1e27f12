"""What deploy/local/up needs from Python: a CA and a certificate for the broker and the
gateway, the operator's password, and the operator's SCRAM credentials on the broker.

Run as `python -m sendhub.local_deploy tls DIR | secret FILE | operator-scram FILE
BOOTSTRAP | restore-scram DIR BOOTSTRAP`. Everything
is written under the git-ignored cache, readable by this user only, and kept across
runs: a second call changes nothing (idempotent), so clients keep trusting the CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime browsers accept for a server certificate


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def secret_file(path: Path) -> str:
    """A generated secret kept in `path` (created once, mode 600)."""
    if not path.is_file():
        _write_private(path, (secrets.token_urlsafe(24) + "\n").encode())
    return path.read_text().strip()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SEN transfer hub (local)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_tls(tls: Path) -> None:
    """ca.pem/ca.key, server.pem/server.key (127.0.0.1 and localhost) and broker.p12 (the
    same key and chain as a PKCS#12 keystore for Kafka, its password in keystore.password)."""
    if (tls / "broker.p12").is_file() and (tls / "server.pem").is_file():
        return
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("sendhub local CA"))
          .issuer_name(_name("sendhub local CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + dt.timedelta(days=CA_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
              .issuer_name(ca.subject).public_key(key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now)
              .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
              .add_extension(x509.SubjectAlternativeName([
                  x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                  critical=False)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    plain = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8
    _write_private(tls / "ca.key", ca_key.private_bytes(pem, pkcs8, plain))
    _write_private(tls / "server.key", key.private_bytes(pem, pkcs8, plain))
    (tls / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tls / "server.pem").write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    password = secrets.token_urlsafe(18)
    _write_private(tls / "keystore.password", (password + "\n").encode())
    _write_private(tls / "broker.p12", pkcs12.serialize_key_and_certificates(
        b"broker", key, server, [ca],
        serialization.BestAvailableEncryption(password.encode())))


def ensure_scram(bootstrap: str, operator_password: str, users: dict[str, str]) -> None:
    """SCRAM-SHA-512 credentials for `users` (name -> password), set through the broker's
    own PLAIN listener as the operator (the only way in before any SCRAM user exists).
    An upsert with the same password is harmless when it is already there."""
    from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="PLAIN", sasl_plain_username="operator",
                             sasl_plain_password=operator_password, client_id="sendhub-deploy",
                             bootstrap_timeout_ms=2000)
    try:
        failed = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            user, ScramMechanism.SCRAM_SHA_512, password) for user, password in users.items()])
    finally:
        admin.close()
    if any(failed.values()):
        raise RuntimeError(f"could not set SCRAM credentials: {failed}")


def restore_scram(bootstrap: str, credentials: Path, wait_seconds: float = 120.0) -> int:
    """Every user whose password file is in `credentials`, the operator first.

    Run after each broker start: this single-node Kafka 4.3.1 has been seen to come back
    from a restart with its ACLs but without the SCRAM credentials set through the admin
    API (the README says more). The files are the source of truth; a revoked principal's
    file is deleted when it is revoked, so nothing revoked comes back. It waits for the
    broker's own listener and runs as soon as that answers, so that clients reconnecting
    to the restarted broker meet their credentials (kafka-python keeps an authentication
    failure and stops trying)."""
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError

    operator = secret_file(credentials / "operator.password")
    users = {path.name.removesuffix(".password"): path.read_text().strip()
             for path in sorted(credentials.glob("*.password"))}
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            ensure_scram(bootstrap, operator, users)
            return len(users)
        except (KafkaConnectionError, KafkaTimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    what, directory = argv[0], Path(argv[1])
    if what == "tls":
        ensure_tls(directory)
    elif what == "secret":
        secret_file(directory)
    elif what == "operator-scram":
        operator = secret_file(directory)
        ensure_scram(argv[2], operator, {"operator": operator})
    elif what == "restore-scram":
        restore_scram(argv[2], directory)
    else:
        sys.stderr.write(f"unknown step {what!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
