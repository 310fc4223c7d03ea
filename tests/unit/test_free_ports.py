"""Ports for the servers the tests and `make dev` start (`tenantry_dev.services`).

A launch asks for its ports one by one (API, internal API, metrics; or SeaweedFS's
five), and the kernel may give the same free port to two bind(0) calls in a row. In CI
the control plane's metrics port was its API port: the metrics listener bound it first,
and its 200 on any path passed for /readyz, so the test talked to the wrong server."""

from __future__ import annotations

import socket

from tenantry_dev.services import free_port, reserved_free_port


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_kernel_alone_repeats_ports_so_the_property_below_is_not_free() -> None:
    """Why the registry is needed: 2000 bind(0) calls give some port twice (about 70
    repeats expected from a range of 28 000); if this ever stops holding, the test
    below would pass without the registry and proves nothing."""
    drawn = [_kernel_port() for _ in range(2000)]
    assert len(set(drawn)) < len(drawn)


def test_free_port_never_hands_out_a_port_twice_in_a_row_of_2000() -> None:
    drawn = [free_port() for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    for port in drawn[-5:]:  # and each was free when handed out
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_reserved_and_ephemeral_ports_never_coincide() -> None:
    reserved = {reserved_free_port() for _ in range(100)}
    assert len(reserved) == 100
    assert not reserved & {free_port() for _ in range(100)}
