"""Metadata actions of one plan go out as one patch per object (BENCHMARKS.md cause 7)."""

from __future__ import annotations

from graylane.executor.coalesce import RolloutMetadata, WorkloadMetadata, coalesce
from graylane.planner.actions import (
    AddRolloutFinalizer,
    DeleteBatchRelease,
    LabelWorkload,
    RecordEvent,
    RemoveRolloutFinalizer,
    RemoveWorkloadAnnotation,
    RemoveWorkloadLabel,
    SetRolloutAnnotation,
    UnpauseWorkload,
)

FIN = "rollouts.kruise.io/rollout"
EVENT = RecordEvent("Normal", "Progressing", "x")


def test_workload_label_and_annotation_removal_become_one_patch_at_the_first_position() -> None:
    steps = coalesce(
        (
            EVENT,
            LabelWorkload("rollouts.kruise.io/workload-type", "deployment"),
            DeleteBatchRelease(),
            RemoveWorkloadAnnotation("rollouts.kruise.io/in-progressing"),
        )
    )
    merged = WorkloadMetadata(
        labels={"rollouts.kruise.io/workload-type": "deployment"},
        annotations={"rollouts.kruise.io/in-progressing": None},
    )
    assert steps == (EVENT, merged, DeleteBatchRelease())
    assert merged.body() == {
        "metadata": {
            "labels": {"rollouts.kruise.io/workload-type": "deployment"},
            "annotations": {"rollouts.kruise.io/in-progressing": None},
        }
    }


def test_rollout_finalizer_and_hash_annotation_become_one_patch() -> None:
    steps = coalesce((AddRolloutFinalizer(FIN), SetRolloutAnnotation("rollouts.kruise.io/hash", "h")))
    [merged] = steps
    assert merged == RolloutMetadata(add=(FIN,), annotations={"rollouts.kruise.io/hash": "h"})
    assert isinstance(merged, RolloutMetadata)
    assert merged.finalizers(["other"]) == ["other", FIN]


def test_finalizer_changes_keep_the_others_and_never_duplicate() -> None:
    assert RolloutMetadata(add=(FIN,)).finalizers([FIN]) == [FIN]
    assert RolloutMetadata(remove=(FIN,)).finalizers(["a", FIN]) == ["a"]
    assert RolloutMetadata(annotations={"k": "v"}).finalizers(["a"]) is None  # finalizers untouched
    assert coalesce((RemoveRolloutFinalizer(FIN),)) == (RolloutMetadata(remove=(FIN,)),)


def test_other_actions_are_left_in_order() -> None:
    actions = (EVENT, DeleteBatchRelease())
    assert coalesce(actions) == actions


def test_a_label_removal_joins_the_guarded_hand_back_patch() -> None:
    [merged] = coalesce((UnpauseWorkload(), RemoveWorkloadLabel("rollouts.kruise.io/stable-revision")))
    assert isinstance(merged, WorkloadMetadata)
    assert merged.body() == {
        "metadata": {"labels": {"rollouts.kruise.io/stable-revision": None}},
        "spec": {"paused": False},
    }
    assert merged.guarded
    assert not WorkloadMetadata(labels={"rollouts.kruise.io/workload-type": "deployment"}).guarded
