"""EventRecorder against the real API server: a core/v1 Event that `kubectl describe` would list,
counted up on repeats instead of duplicated."""

from __future__ import annotations

from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.kube.events import CORE_EVENT, EventKind, EventRecorder


async def test_events_are_created_then_counted(kube: KubeClient, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "subject", "namespace": namespace}}
    subject = await kube.create(r.CONFIGMAP, body)
    recorder = EventRecorder(kube)
    for _ in range(3):
        await recorder.event(subject, EventKind.NORMAL, "Progressing", "step 1 of 3")
    await recorder.event(subject, EventKind.WARNING, "Stalled", "no ready pods")

    listed = await kube.list(CORE_EVENT, namespace, field_selector="involvedObject.name=subject")
    events = {e["reason"]: e for e in listed["items"]}
    assert set(events) == {"Progressing", "Stalled"}
    progressing = events["Progressing"]
    assert progressing["count"] == 3
    assert progressing["type"] == "Normal"
    assert progressing["source"]["component"] == "rollout-controller"
    assert progressing["involvedObject"]["uid"] == subject["metadata"]["uid"]
    assert progressing["involvedObject"]["kind"] == "ConfigMap"
    assert events["Stalled"]["count"] == 1
