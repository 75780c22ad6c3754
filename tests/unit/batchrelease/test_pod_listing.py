"""When the BatchRelease controller lists pods for their batch labels, and which ones it asks for."""

from __future__ import annotations

from typing import Any

import pytest

from graylane.api.batchrelease import BatchRelease
from graylane.batchrelease.controller import _checks_batches, _pod_selector


def release(phase: str, deleting: bool = False) -> BatchRelease:
    meta: dict[str, Any] = {"name": "br", "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return BatchRelease.from_obj({"metadata": meta, "spec": {"releasePlan": {}}, "status": {"phase": phase}})


@pytest.mark.parametrize(
    ("phase", "deleting", "lists"),
    [
        ("", False, True),
        ("Preparing", False, True),
        ("Progressing", False, True),
        ("Finalizing", False, False),
        ("Completed", False, False),
        ("Progressing", True, False),  # deleted: it only finalizes
    ],
)
def test_pods_are_listed_only_while_a_batch_can_be_checked(phase: str, deleting: bool, lists: bool) -> None:
    assert _checks_batches(release(phase, deleting)) is lists


def rs(hash_: str) -> dict[str, Any]:
    return {"metadata": {"name": f"d-{hash_}", "labels": {"app": "a", "pod-template-hash": hash_}}}


def test_the_selector_asks_for_the_updated_replica_sets_pods_only() -> None:
    dep = {"spec": {"selector": {"matchLabels": {"app": "a", "tier": "web"}}}}
    assert _pod_selector(dep, [rs("h2"), rs("h1")]) == "app=a,tier=web,pod-template-hash in (h1,h2)"


def test_a_replica_set_without_its_hash_label_keeps_the_workload_selector() -> None:
    dep = {"spec": {"selector": {"matchLabels": {"app": "a"}}}}
    unlabelled = {"metadata": {"name": "d-x", "labels": {"app": "a"}}}
    assert _pod_selector(dep, [rs("h1"), unlabelled]) == "app=a"
