"""Local-cluster certificates and the package layout."""

from __future__ import annotations

import operator
import ssl
from pathlib import Path

import yaml
from cryptography import x509

from tenantry_dev import pki


def test_certificates_chain_to_the_ca(tmp_path: Path) -> None:
    p = pki.generate(tmp_path)
    ca = x509.load_pem_x509_certificate(p.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(p.server_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(p.admin_cert.read_bytes())
    for cert in (server, admin):
        cert.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    orgs = [a.value for a in admin.subject if a.oid == x509.NameOID.ORGANIZATION_NAME]
    assert orgs == ["system:masters"]
    # The server certificate is usable by an SSL context (key matches).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(p.server_cert), str(p.server_key))
    assert oct(p.admin_key.stat().st_mode & 0o777) == "0o600"


def test_generate_is_idempotent(tmp_path: Path) -> None:
    first = pki.generate(tmp_path).ca_cert.read_bytes()
    assert pki.generate(tmp_path).ca_cert.read_bytes() == first


def test_kubeconfig_embeds_credentials(tmp_path: Path) -> None:
    p = pki.generate(tmp_path)
    path = pki.kubeconfig(p, server="https://127.0.0.1:6443", path=tmp_path / "kc")
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert doc["users"][0]["user"]["client-key-data"]


def test_operator_package_does_not_shadow_stdlib() -> None:
    import tenantry_operator

    assert hasattr(operator, "itemgetter"), "stdlib operator must stay importable"
    assert Path(tenantry_operator.__file__).parent.parent.name == "operator"
