"""The control plane and the operator judge a Tenant on the same values.

The control plane resolves a spec's effective values with ``plan_limits.ask_of``; the
operator takes them from its resolved model (``normalize.tenant_model``), which is what
it builds. For every spec drawn, the two must be equal, so the one rule
(``plan_limits.violation``) gives both the same answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tenantry_operator import org_limits
from tenantry_operator.normalize import tenant_model

from controlplane.billing import catalog
from tenantry import plan_limits
from tenantry.api.tenant import TenantSpec
from tenantry.internal_api import OrgLimitsOut

SPECS = st.fixed_dictionaries(
    {"plan": st.sampled_from(["starter", "growth", "enterprise"])},
    optional={
        "clickhouse": st.fixed_dictionaries(
            {},
            optional={"shards": st.integers(1, 64), "replicas": st.integers(1, 5)},
        ),
        "retentionDays": st.integers(1, 3650),
    },
)


@settings(max_examples=300, derandomize=True)
@given(
    spec=SPECS,
    org=st.sampled_from(["starter", "growth", "enterprise"]),
    position=st.integers(0, 120),
)
def test_control_plane_and_operator_agree(spec: dict[str, Any], org: str, position: int) -> None:
    try:
        TenantSpec.model_validate(spec)
    except ValidationError:
        # Past the host cap: both sides refuse the spec itself, before any plan limit.
        with pytest.raises(ValidationError, match="hosts"):
            tenant_model({"metadata": {"name": "acme"}, "spec": spec})
        return
    model = tenant_model({"metadata": {"name": "acme"}, "spec": spec})
    ask = plan_limits.ask_of(TenantSpec.model_validate(spec))
    assert ask == plan_limits.Ask(
        plan=model.plan,
        shards=model.clickhouse.shards,
        replicas=model.clickhouse.replicas,
        retention_days=model.retention_days,
    )
    limits = catalog.limits_out(org)
    control_plane = plan_limits.violation(org, limits, ask, position=position)
    operator = org_limits.violation(OrgLimitsOut(plan=org, limits=limits), model, position=position)
    assert control_plane == operator
