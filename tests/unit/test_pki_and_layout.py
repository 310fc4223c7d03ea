"""Local-cluster certificates and the package layout."""

from __future__ import annotations

import fnmatch
import operator
import ssl
import tomllib
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


def test_the_dev_harness_is_in_no_wheel() -> None:
    """pyproject's package list (what a wheel, and so the image, holds) has the runtime
    packages and never `tenantry_dev` (scripts/image.sh checks the built image too)."""
    repo = Path(__file__).resolve().parents[2]
    find = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]
    # setuptools' find: every folder with an __init__.py whose dotted name matches
    packages = {
        ".".join(init.parent.relative_to(repo / where).parts)
        for where in find["where"]
        for top in (repo / where).iterdir()
        if top.is_dir() and not top.name.startswith(".")
        for init in top.glob("**/__init__.py")
    }
    shipped = {
        name
        for name in packages
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in find["include"])
    }
    tops = {name.split(".")[0] for name in shipped}
    assert tops == {"tenantry", "tenantry_cli", "tenantry_operator", "controlplane", "ingestion"}
    assert "tenantry.dashboards" in shipped
    assert "tenantry_dev" in packages  # found, and left out
