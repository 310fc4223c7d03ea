"""The dev harness: everything that stands in for a real environment on this machine.

Dev-only: it is not in the wheel's package list (pyproject.toml), never copied into the
image (Dockerfile, .dockerignore), and no runtime package imports it (``.importlinter``);
``scripts/image.sh`` checks that the image has none of it. ``make venv`` puts the
repository root on the venv's path so tests, benchmarks and the Makefile reach it.

- ``cluster``, ``pki``, ``tools``: a real local Kubernetes control plane. etcd,
  kube-apiserver (TLS, client-certificate admin), kube-controller-manager and
  kube-scheduler run as processes on loopback, built from their Go modules by
  ``scripts/tools.sh``; kwok plays the kubelet for a few fake nodes, so pods become
  Running and Ready without containers. ``make cluster-up`` and the pytest session
  fixture both use it.
- ``realnode``: instead of kwok (``cluster up --nodes real``), one real node:
  containerd, kubelet, kube-proxy and CoreDNS in a network namespace of its own.
- ``provisioner``: binds PVCs to PVs it creates, in the role of a CSI driver (real
  directories under the state dir with a real node).
- ``services``: PostgreSQL and Redis as processes on loopback, and the control plane
  served by ``tenantry controlplane serve``.
- ``loopback_server``: a ClickHouse-HTTP endpoint on loopback that runs every query on
  chDB, the stand-in for a ClickHouse server (none can be installed on these machines);
  its HTTP interface is ``standins.clickhouse_http``, shared with the ClickHouse
  stand-in image's server (``standins/``).
- ``stack`` and ``__main__``: ``python -m tenantry_dev dev`` (``make dev``), the whole
  product on this machine, and ``python -m tenantry_dev cluster up|down|...``.
"""
