"""Pure rules of webhooks: Standard Webhooks signatures, the URL policy, the payload."""

from __future__ import annotations

import base64
import json

import pytest

from controlplane.webhooks import service, signing, targets

STRICT = targets.Policy(allow_http=False, allow_private=False)
LOCAL = targets.Policy(allow_http=True, allow_private=True)


def test_signature_matches_the_specifications_example() -> None:
    """The example of the Standard Webhooks specification (and its reference libraries'
    tests): this secret, id, timestamp and body give this signature."""
    got = signing.signature(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_32_random_bytes_and_differ() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b
    assert a.startswith("whsec_")
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address checked, not bound
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    assert not targets.address_allowed(address, STRICT)


def test_global_addresses_are_allowed_and_local_runs_allow_private_ones() -> None:
    assert targets.address_allowed("93.184.215.14", STRICT)
    assert targets.address_allowed("2606:2800:21f:cb07:6820:80da:af6b:8b2c", STRICT)
    assert targets.address_allowed("127.0.0.1", LOCAL)
    assert not targets.address_allowed("0.0.0.0", LOCAL)  # noqa: S104 - checked, not bound


@pytest.mark.parametrize(
    ("url", "policy", "message"),
    [
        ("http://example.com/", STRICT, "https://"),
        ("gopher://example.com/", LOCAL, "https://"),
        ("https://u:p@example.com/", STRICT, "credentials"),
        ("https:///path", STRICT, "no host"),
        ("https://example.com:99999/", STRICT, "not a valid URL"),
    ],
)
def test_url_syntax_is_checked(url: str, policy: targets.Policy, message: str) -> None:
    with pytest.raises(targets.TargetRefused, match=message):
        targets.check_syntax(url, policy)


async def test_resolve_pins_the_checked_address_and_keeps_the_host() -> None:
    got = await targets.resolve("http://localhost:8080/a?b=c", LOCAL)
    assert got.host == "localhost"
    assert got.address in ("127.0.0.1", "::1")
    assert got.url in ("http://127.0.0.1:8080/a?b=c", "http://[::1]:8080/a?b=c")
    assert targets.host_header("http://localhost:8080/a") == "localhost:8080"
    with pytest.raises(targets.TargetRefused, match="non-global"):
        await targets.resolve("https://localhost/", STRICT)


def test_payload_is_the_standard_shape_and_capped() -> None:
    body = json.loads(service.payload("alert.firing", {"id": 3, "x": "y"}))
    assert body["type"] == "alert.firing"
    assert body["data"] == {"id": 3, "x": "y"}
    assert body["timestamp"].endswith("Z")
    huge = service.payload("alert.firing", {"id": 4, "x": "y" * 100_000})
    assert len(huge.encode()) <= service.MAX_PAYLOAD_BYTES
    assert json.loads(huge)["data"] == {"id": 4, "truncated": True}
