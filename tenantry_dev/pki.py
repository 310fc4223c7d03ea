"""Certificates and keys for the local control plane (a throwaway CA per cluster)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pki:
    """Paths of every file the components need."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    is_ca: bool,
    usage: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName],
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(signer, hashes.SHA256())


def generate(directory: Path) -> Pki:
    """Create a CA, the API server's serving cert, an admin client cert and the
    service-account signing key. Idempotent: an existing set is reused."""
    pki = Pki(directory)
    if pki.sa_pub.exists():
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("tenantry-local-ca")
    ca = _issue(
        subject=ca_name,
        issuer=ca_name,
        public_key=ca_key.public_key(),
        signer=ca_key,
        is_ca=True,
        usage=[],
        sans=[],
    )
    _write_key(pki.ca_key, ca_key)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName(n)
        for n in (
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        )
    ]
    # 198.51.100.1: the host end of a real node's veth (tenantry_dev/realnode.py), where
    # the node and its pods reach the API server.
    sans += [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "10.96.0.1", "198.51.100.1")
    ]
    server = _issue(
        subject=_name("kube-apiserver"),
        issuer=ca_name,
        public_key=server_key.public_key(),
        signer=ca_key,
        is_ca=False,
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=sans,
    )
    _write_key(pki.server_key, server_key)
    pki.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))

    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        subject=_name("tenantry-admin", "system:masters"),
        issuer=ca_name,
        public_key=admin_key.public_key(),
        signer=ca_key,
        is_ca=False,
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=[],
    )
    _write_key(pki.admin_key, admin_key)
    pki.admin_cert.write_bytes(admin.public_bytes(serialization.Encoding.PEM))

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return ca, ca_key


def issue_client(pki: Pki, *, user: str, group: str) -> tuple[Path, Path]:
    """A client certificate for ``user`` in ``group`` (idempotent); (cert, key) paths.

    Separate identities let the API server's audit log tell who wrote what, e.g. the
    operator's writes apart from the controllers' and kwok's."""
    cert_path, key_path = pki.dir / f"{user}.crt", pki.dir / f"{user}.key"
    if cert_path.exists():
        return cert_path, key_path
    ca, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        subject=_name(user, group),
        issuer=ca.subject,
        public_key=key.public_key(),
        signer=ca_key,
        is_ca=False,
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
        sans=[],
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def issue_server(pki: Pki, *, name: str, ips: list[str]) -> tuple[Path, Path]:
    """A serving certificate for ``ips`` (idempotent), e.g. a real node's kubelet, which
    the API server checks against the CA; (cert, key) paths."""
    cert_path, key_path = pki.dir / f"{name}.crt", pki.dir / f"{name}.key"
    if cert_path.exists():
        return cert_path, key_path
    ca, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        subject=_name(name),
        issuer=ca.subject,
        public_key=key.public_key(),
        signer=ca_key,
        is_ca=False,
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[x509.IPAddress(ipaddress.ip_address(a)) for a in ips],
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def kubeconfig(
    pki: Pki,
    *,
    server: str,
    path: Path,
    name: str = "tenantry-local",
    client: tuple[Path, Path] | None = None,
) -> Path:
    """Write a kubeconfig (embedded certificates; the admin's unless ``client`` is given)
    and return its path."""
    import base64

    import yaml

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(client[0] if client else pki.admin_cert),
                    "client-key-data": b64(client[1] if client else pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "admin"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path
