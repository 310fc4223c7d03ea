"""A real local Kubernetes control plane for development and tests.

etcd, kube-apiserver (TLS, client-certificate admin), kube-controller-manager and
kube-scheduler run as processes on loopback, built from their Go modules by
``scripts/tools.sh``; kwok plays the kubelet for a few fake nodes, so pods become
Running and Ready without containers. ``make cluster-up`` and the pytest session
fixture both use this package.
"""
