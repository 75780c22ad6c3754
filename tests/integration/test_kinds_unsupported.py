"""Issue 16 acceptance: a Rollout whose workload graylane cannot release is never silent.

With the webhook: refused, 422, naming the field and what is supported. Without it (created while the
validating webhook was not registered): its status says so, with a Warning Event, instead of Kruise's
`Workload Not Found` while the workload rolls every pod at once.
"""

from __future__ import annotations

import pytest

from graylane.api.workloads import SUPPORTED
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from graylane.planner.unsupported import UNSUPPORTED_REASON
from graylane.webhook import install as inst
from tests.integration.waiting import eventually
from tests.integration.webhook_fixtures import Snapshot, create_unvalidated

pytestmark = pytest.mark.usefixtures("graylane_controller")
REPLICASET = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web"}


def rollout_of(ref: dict[str, str]) -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "workloadRef": ref,
            "strategy": {"canary": {"steps": [{"replicas": 1}, {"replicas": "100%"}]}},
        },
    }


async def test_the_webhook_refuses_a_kind_it_cannot_release(kube: KubeClient, namespace: str) -> None:
    with pytest.raises(ApiError) as refused:
        await kube.create(r.ROLLOUT, rollout_of(REPLICASET), namespace)
    assert refused.value.code == 422
    message = refused.value.message
    assert (
        'Spec.ObjectRef.WorkloadRef: Invalid value: v1beta1.ObjectRef{APIVersion:"apps/v1", Kind:"ReplicaSet"'
        in message
    )
    assert f"WorkloadRef kind is not supported; supported: {SUPPORTED}" in message


async def test_admitted_without_the_webhook_it_says_so_in_status_and_an_event(
    kube: KubeClient, namespace: str
) -> None:
    before = await Snapshot.take(kube)
    await kube.delete(r.VALIDATING_WEBHOOK, inst.VALIDATING_CONFIGURATION)
    try:
        await create_unvalidated(kube, r.ROLLOUT, rollout_of(REPLICASET), namespace)
    finally:
        await before.restore(kube)

    ro = await eventually(
        lambda: kube.get(r.ROLLOUT, "web", namespace),
        lambda ro: "ReplicaSet" in str((ro.get("status") or {}).get("message")),
        what="the Rollout's status naming the kind",
    )
    assert ro["status"]["phase"] == "Initial"
    assert ro["status"]["message"].startswith("WorkloadRef kind is not supported: ReplicaSet (apps/v1)")
    assert SUPPORTED in ro["status"]["message"]

    def warned(events: Obj) -> bool:
        return any(
            e.get("type") == "Warning" and e.get("reason") == UNSUPPORTED_REASON for e in events["items"]
        )

    selector = "involvedObject.kind=Rollout,involvedObject.name=web"
    await eventually(
        lambda: kube.list(CORE_EVENT, namespace, field_selector=selector), warned, what="a Warning Event"
    )
