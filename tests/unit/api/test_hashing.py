"""The rollouts.kruise.io/hash value and the BatchRelease release-plan hash."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from graylane.api.batchrelease import ReleasePlan
from graylane.api.common import go_dump
from graylane.api.hashing import (
    ALPHANUMS,
    go_json,
    release_plan_hash,
    rollout_hash,
    rollout_hash_from_obj,
    safe_encode,
)
from graylane.api.rollout_v1beta1 import RolloutStrategy

# What SafeEncodeString can produce from lower-case hex ("0" and "f" both land on "4").
HASH_ALPHABET = set("456789bcdfvwxz2")


def strategy(**canary: Any) -> RolloutStrategy:
    base: dict[str, Any] = {
        "steps": [
            {"traffic": "20%", "replicas": 1, "pause": {}},
            {"traffic": "50%", "replicas": "50%", "pause": {"duration": 60}},
        ],
        "trafficRoutings": [{"service": "svc", "ingress": {"name": "ing"}}],
    }
    return RolloutStrategy.from_obj({"canary": {**base, **canary}})


def expected_hash(go_text: str) -> str:
    return safe_encode(hashlib.sha256(go_text.encode()).hexdigest())


def test_hash_is_sha256_of_the_go_json_of_the_blanked_canary() -> None:
    got = rollout_hash(
        strategy(
            steps=[
                {
                    "traffic": "20%",
                    "matches": [{"headers": [{"name": "u", "value": "pc"}]}],
                    "replicas": 1,
                    "pause": {"duration": 10},
                }
            ],
            failureThreshold="10%",
            enableExtraWorkloadForCanary=True,
        )
    )

    # Field order, omitempty and defaults exactly as Go's json.Marshal writes v1beta1.CanaryStrategy.
    go_text = (
        '{"steps":[{"traffic":"20%","matches":[{"headers":[{"type":"Exact","name":"u","value":"pc"}]}],'
        '"replicas":1,"pause":{}}],"trafficRoutings":[{"service":"svc","gracePeriodSeconds":3,'
        '"ingress":{"name":"ing"}}],"enableExtraWorkloadForCanary":true}'
    )
    assert got == expected_hash(go_text)


@pytest.mark.parametrize(
    "change",
    [
        {
            "steps": [
                {"traffic": "20%", "replicas": 1, "pause": {"duration": 5}},
                {"traffic": "50%", "replicas": "50%"},
            ]
        },
        {"failureThreshold": 3},
        {"failureThreshold": "20%"},
    ],
)
def test_pauses_and_failure_threshold_do_not_change_the_hash(change: dict[str, Any]) -> None:
    assert rollout_hash(strategy(**change)) == rollout_hash(strategy())


def test_paused_flag_does_not_change_the_hash() -> None:
    paused = strategy().model_copy(update={"paused": True})

    assert rollout_hash(paused) == rollout_hash(strategy())


@pytest.mark.parametrize(
    "change",
    [
        {"steps": [{"traffic": "20%", "replicas": 2}, {"traffic": "50%", "replicas": "50%"}]},
        {"steps": [{"traffic": "25%", "replicas": 1}, {"traffic": "50%", "replicas": "50%"}]},
        {"steps": [{"traffic": "20%", "replicas": 1}]},
        {"trafficRoutings": [{"service": "other"}]},
        {"enableExtraWorkloadForCanary": True},
        {"patchPodTemplateMetadata": {"labels": {"a": "b"}}},
    ],
)
def test_plan_changes_change_the_hash(change: dict[str, Any]) -> None:
    assert rollout_hash(strategy(**change)) != rollout_hash(strategy())


def test_the_crd_default_grace_period_is_part_of_the_hash_either_way() -> None:
    explicit = strategy(
        trafficRoutings=[{"service": "svc", "ingress": {"name": "ing"}, "gracePeriodSeconds": 3}]
    )

    assert rollout_hash(explicit) == rollout_hash(strategy())


def test_unknown_fields_are_not_hashed() -> None:
    assert rollout_hash(strategy(someFutureField=1)) == rollout_hash(strategy())


def test_blue_green_is_hashed_when_present() -> None:
    blue_green = RolloutStrategy.from_obj(
        {"blueGreen": {"steps": [{"replicas": "100%", "pause": {}}]}, "canary": {}}
    )

    assert rollout_hash(blue_green) == expected_hash('{"steps":[{"replicas":"100%","pause":{}}]}')


def test_an_empty_strategy_has_no_hash() -> None:
    with pytest.raises(ValueError, match="rolling style"):
        rollout_hash(RolloutStrategy())


def test_hash_shape() -> None:
    value = rollout_hash(strategy())

    assert len(value) == 64
    assert set(value) <= HASH_ALPHABET


def test_safe_encode_maps_through_the_kubernetes_alphabet() -> None:
    assert ALPHANUMS == "bcdfghjklmnpqrstvwxz2456789"
    assert safe_encode("0123456789abcdef") == "456789bcdfvwxz24"


def test_go_json_escapes_html_and_sorts_maps() -> None:
    s = strategy(patchPodTemplateMetadata={"labels": {"z": "1", "a": "<&>"}})

    text = go_json(go_dump(s.canary, keep_extra=False)) if s.canary else ""

    assert '"patchPodTemplateMetadata":{"labels":{"a":"\\u003c\\u0026\\u003e","z":"1"}}' in text


def test_hash_from_obj_matches_the_model() -> None:
    obj = {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
            "strategy": strategy().to_obj(),
        },
    }

    assert rollout_hash_from_obj(obj) == rollout_hash(strategy())


def test_release_plan_hash_is_plain_sha256_hex_of_the_go_json() -> None:
    plan = ReleasePlan.from_obj(
        {"batches": [{"canaryReplicas": 1}, {"canaryReplicas": "50%"}], "batchPartition": 0}
    )

    go_text = (
        '{"batches":[{"canaryReplicas":1},{"canaryReplicas":"50%"}],"batchPartition":0,'
        '"enableExtraWorkloadForCanary":false}'
    )
    assert release_plan_hash(plan) == hashlib.sha256(go_text.encode()).hexdigest()
