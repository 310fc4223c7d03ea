"""The ``tenantry`` command (``main.py``), the top layer of the runtime.

A package of its own because the shared package ``tenantry`` sits at the bottom and
imports none of the components, while this command starts each of them. The layers
(``.importlinter``): ``tenantry_cli`` above ``tenantry_operator``, ``controlplane`` and
``ingestion`` (which never import each other), above ``tenantry``.
"""
