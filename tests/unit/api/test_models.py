"""Models: parsing, Go-shaped dumping, defaults, helpers, IntOrString arithmetic and the public surface."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

import graylane.api as api
from graylane.api import keys, rollout_v1alpha1
from graylane.api.batchrelease import BatchRelease, BatchReleaseV1alpha1
from graylane.api.common import format_time
from graylane.api.enums import FinalisingStep, RollingStyle, StepState
from graylane.api.rollout_v1beta1 import IngressTrafficRouting, Rollout, RolloutStrategy, is_real_partition
from graylane.api.rollouthistory import RolloutHistory
from graylane.api.trafficrouting import TrafficRouting

WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echoserver"}


def beta_rollout(**canary: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"workloadRef": dict(WORKLOAD), "strategy": {"canary": canary}},
    }


# -- parsing and dumping -------------------------------------------------------------------------------


def test_docs_example_round_trips_with_crd_defaults_filled_in() -> None:
    obj = beta_rollout(
        enableExtraWorkloadForCanary=True,
        steps=[
            {"traffic": "5%", "pause": {}, "replicas": 1},
            {"traffic": "50%", "replicas": "50%", "pause": {"duration": 7200}},
            {"traffic": "100%", "replicas": "100%"},
        ],
        trafficRoutings=[{"service": "echoserver", "ingress": {"name": "echoserver"}}],
    )

    dumped = Rollout.from_obj(obj).to_obj()

    canary = dumped["spec"]["strategy"]["canary"]
    assert canary["steps"] == [
        {"traffic": "5%", "replicas": 1, "pause": {}},
        {"traffic": "50%", "replicas": "50%", "pause": {"duration": 7200}},
        {"traffic": "100%", "replicas": "100%", "pause": {}},
    ]
    assert canary["trafficRoutings"] == [
        {"service": "echoserver", "gracePeriodSeconds": 3, "ingress": {"name": "echoserver"}}
    ]
    assert canary["enableExtraWorkloadForCanary"] is True
    assert dumped["spec"]["disabled"] is False
    assert dumped["spec"]["workloadRef"] == WORKLOAD


def test_dump_writes_go_non_omitempty_fields_and_drops_zero_omitempty_ones() -> None:
    obj = beta_rollout(steps=[{"replicas": 1}])
    obj["status"] = {"canaryStatus": {"currentStepIndex": 1, "message": ""}, "observedGeneration": 0}

    status = Rollout.from_obj(obj).to_obj()["status"]

    assert status == {
        "canaryStatus": {
            "podTemplateHash": "",
            "currentStepIndex": 1,
            "nextStepIndex": 0,
            "finalisingStep": "",
            "currentStepState": "",
            "canaryRevision": "",
            "canaryReplicas": 0,
            "canaryReadyReplicas": 0,
        },
        "currentStepIndex": 0,
        "currentStepState": "",
    }


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"replicas": 0}, {"replicas": 0, "pause": {}}),
        ({"replicas": "0%", "traffic": "0%"}, {"traffic": "0%", "replicas": "0%", "pause": {}}),
        ({"pause": {"duration": 0}}, {"pause": {"duration": 0}}),
    ],
)
def test_pointer_fields_keep_zero_values(step: dict[str, Any], expected: dict[str, Any]) -> None:
    dumped = Rollout.from_obj(beta_rollout(steps=[step])).to_obj()

    assert dumped["spec"]["strategy"]["canary"]["steps"] == [expected]


def test_unknown_fields_round_trip_at_every_level() -> None:
    obj = beta_rollout(steps=[{"replicas": 1, "futureStepField": {"a": 1}}], futureCanaryField=True)
    obj["spec"]["futureSpecField"] = "x"
    obj["metadata"]["futureMeta"] = [1, 2]
    obj["extraTopLevel"] = 7

    dumped = Rollout.from_obj(obj).to_obj()

    assert dumped["spec"]["strategy"]["canary"]["steps"][0]["futureStepField"] == {"a": 1}
    assert dumped["spec"]["strategy"]["canary"]["futureCanaryField"] is True
    assert dumped["spec"]["futureSpecField"] == "x"
    assert dumped["metadata"]["futureMeta"] == [1, 2]
    assert dumped["extraTopLevel"] == 7


def test_parsing_does_not_mutate_the_input() -> None:
    obj = beta_rollout(steps=[{"replicas": 1}])
    before = copy.deepcopy(obj)

    Rollout.from_obj(obj).to_obj()

    assert obj == before


def test_a_v1alpha1_object_is_rejected_by_the_v1beta1_model() -> None:
    obj = beta_rollout()
    obj["apiVersion"] = "rollouts.kruise.io/v1alpha1"

    with pytest.raises(ValidationError):
        Rollout.from_obj(obj)


def test_header_match_defaults_and_validation() -> None:
    obj = beta_rollout(
        steps=[{"matches": [{"headers": [{"name": "user-agent", "value": "pc"}], "path": {}}]}]
    )

    match = Rollout.from_obj(obj).to_obj()["spec"]["strategy"]["canary"]["steps"][0]["matches"][0]

    assert match == {
        "path": {"type": "PathPrefix", "value": "/"},
        "headers": [{"type": "Exact", "name": "user-agent", "value": "pc"}],
    }
    bad = beta_rollout(steps=[{"matches": [{"headers": [{"name": "bad name", "value": "v"}]}]}])
    with pytest.raises(ValidationError):
        Rollout.from_obj(bad)


def test_times_parse_and_dump_as_rfc3339_utc() -> None:
    obj = beta_rollout()
    obj["status"] = {
        "conditions": [{"type": "Progressing", "status": "True", "lastUpdateTime": "2024-05-01T10:00:00Z"}]
    }

    rollout = Rollout.from_obj(obj)

    condition = rollout.status.conditions[0]
    assert condition.last_update_time == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert rollout.to_obj()["status"]["conditions"][0] == {
        "type": "Progressing",
        "status": "True",
        "lastUpdateTime": "2024-05-01T10:00:00Z",
        "reason": "",
        "message": "",
    }
    assert format_time(datetime(2024, 1, 2, 3, 4, 5, 999)) == "2024-01-02T03:04:05Z"


def test_v1alpha1_rollout_round_trips() -> None:
    obj = {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "annotations": {keys.ROLLING_STYLE_ANNOTATION: "partition"}},
        "spec": {
            "objectRef": {"workloadRef": dict(WORKLOAD)},
            "rolloutID": "r1",
            "strategy": {"canary": {"steps": [{"weight": 0, "replicas": 1, "pause": {}}]}},
        },
    }

    dumped = rollout_v1alpha1.Rollout.from_obj(obj).to_obj()

    assert dumped["spec"] == {
        "objectRef": {"workloadRef": WORKLOAD},
        "strategy": {"canary": {"steps": [{"weight": 0, "replicas": 1, "pause": {}}]}},
        "rolloutID": "r1",
        "disabled": False,
    }
    assert dumped["status"] == {}


def test_batch_release_versions_differ_in_workload_ref_and_message() -> None:
    plan = {"batches": [{"canaryReplicas": "20%"}], "batchPartition": 0}
    beta = BatchRelease.from_obj(
        {"spec": {"workloadRef": WORKLOAD, "releasePlan": plan}, "status": {"message": "m"}}
    )
    alpha = BatchReleaseV1alpha1.from_obj(
        {
            "spec": {"targetReference": {"workloadRef": WORKLOAD}, "releasePlan": plan},
            "status": {"message": "m"},
        }
    )

    beta_obj, alpha_obj = beta.to_obj(), alpha.to_obj()

    expected_plan = {
        "batches": [{"canaryReplicas": "20%"}],
        "batchPartition": 0,
        "enableExtraWorkloadForCanary": False,
    }
    assert beta_obj["spec"] == {"workloadRef": WORKLOAD, "releasePlan": expected_plan}
    assert alpha_obj["spec"] == {"targetReference": {"workloadRef": WORKLOAD}, "releasePlan": expected_plan}
    assert beta_obj["status"] == {"canaryStatus": {"currentBatch": 0}, "message": "m"}
    # v1alpha1 has no status.message: it survives only as an unknown field.
    assert alpha.status.model_extra == {"message": "m"}


def test_traffic_routing_and_rollout_history_round_trip() -> None:
    tr = {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "TrafficRouting",
        "metadata": {"name": "tr"},
        "spec": {
            "objectRef": [{"service": "svc", "ingress": {"name": "ing"}, "gracePeriodSeconds": 5}],
            "strategy": {"weight": 10, "matches": [{"headers": [{"name": "x", "value": "1"}]}]},
        },
        "status": {"phase": "Healthy", "message": "TrafficRouting is Healthy"},
    }
    history: dict[str, Any] = {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "RolloutHistory",
        "spec": {"rollout": {"name": "demo", "rolloutID": "1", "data": {"any": ["raw", {"spec": 1}]}}},
        "status": {
            "phase": "completed",
            "canarySteps": [
                {"canaryStepIndex": 1, "pods": [{"name": "p", "ip": "1.2.3.4", "nodeName": "n"}]}
            ],
        },
    }

    assert (
        TrafficRouting.from_obj(tr).to_obj()["spec"]["strategy"]["matches"][0]["headers"][0]["type"]
        == "Exact"
    )
    assert TrafficRouting.from_obj(tr).to_obj()["status"] == tr["status"]
    dumped = RolloutHistory.from_obj(history).to_obj()
    assert dumped["spec"]["rollout"] == history["spec"]["rollout"]
    assert dumped["status"] == history["status"]


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "style"),
    [
        ({"canary": {}}, RollingStyle.PARTITION),
        ({"canary": {"enableExtraWorkloadForCanary": True}}, RollingStyle.CANARY),
        ({"blueGreen": {}}, RollingStyle.BLUE_GREEN),
        ({"canary": {"enableExtraWorkloadForCanary": True}, "blueGreen": {}}, RollingStyle.BLUE_GREEN),
        ({}, None),
    ],
)
def test_rolling_style(strategy: dict[str, Any], style: RollingStyle | None) -> None:
    assert RolloutStrategy.from_obj(strategy).rolling_style() == style


@pytest.mark.parametrize(
    ("kind", "extra", "blue_green", "expected"),
    [
        ("Deployment", True, False, False),
        ("Deployment", False, False, True),
        ("CloneSet", True, False, True),
        ("Deployment", False, True, False),
    ],
)
def test_is_real_partition(kind: str, extra: bool, blue_green: bool, expected: bool) -> None:
    obj = beta_rollout(enableExtraWorkloadForCanary=extra)
    obj["spec"]["workloadRef"]["kind"] = kind
    if blue_green:
        obj["spec"]["strategy"] = {"blueGreen": {}}

    assert is_real_partition(Rollout.from_obj(obj)) is expected


def test_strategy_and_status_accessors() -> None:
    obj = beta_rollout(
        steps=[{"replicas": 1}], trafficRoutings=[{"service": "s"}], disableGenerateCanaryService=True
    )
    obj["status"] = {
        "blueGreenStatus": {"currentStepIndex": 2},
        "conditions": [{"type": "Succeeded", "status": "True"}],
    }

    rollout = Rollout.from_obj(obj)

    strategy = rollout.spec.strategy
    assert [s.replicas for s in strategy.steps()] == [1]
    assert [r.service for r in strategy.traffic_routings()] == ["s"]
    assert strategy.disable_generate_canary_service() is True
    sub = rollout.status.sub_status()
    assert sub is not None
    assert sub.current_step_index == 2
    assert rollout.status.condition("Succeeded") is not None
    assert rollout.status.condition("Progressing") is None
    assert RolloutStrategy().steps() == []


def test_ingress_class_type_has_no_crd_default_but_nginx_is_effective() -> None:
    ingress = IngressTrafficRouting.from_obj({"name": "i"})

    assert ingress.to_obj() == {"name": "i"}
    assert ingress.effective_class_type == "nginx"


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        (5, 10, True, 5),
        ("20%", 3, True, 1),
        ("40%", 3, True, 2),
        ("90%", 5, True, 5),
        ("90%", 5, False, 4),
        ("100%", 7, True, 7),
        ("0%", 7, True, 0),
        ("-10%", 15, True, -1),
        ("-10%", 15, False, -2),
    ],
)
def test_scaled_int_or_percent(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert api.scaled_int_or_percent(value, total, round_up=round_up) == expected


@pytest.mark.parametrize("value", ["5", "5.5%", "%", "a%", " 5%"])
def test_scaled_int_or_percent_rejects_non_percentages(value: str) -> None:
    with pytest.raises(ValueError, match="IntOrString"):
        api.scaled_int_or_percent(value, 10, round_up=True)


def test_percent_helpers() -> None:
    assert api.percent(10) == "10%"
    assert api.is_percent("10%")
    assert not api.is_percent(10)
    assert not api.is_percent("10")


# -- vocabulary ------------------------------------------------------------------------------------------


def test_enum_values_are_kruise_spellings() -> None:
    assert [s.value for s in StepState] == [
        "BeforeStepUpgrade",
        "StepUpgrade",
        "StepTrafficRouting",
        "StepMetricsAnalysis",
        "StepPaused",
        "StepReady",
        "Completed",
    ]
    assert FinalisingStep.RESTORE_STABLE_SERVICE.value == "RestoreStableService"
    assert FinalisingStep.END.value == "END"
    assert api.RolloutPhase.DISABLING.value == "Disabling"
    assert api.ProgressingReason.IN_ROLLING.value == "InRolling"
    assert api.BatchState.VERIFYING.value == "Verifying"
    assert api.TrafficRoutingPhase.FINALIZING.value == "Finalizing"


def test_keys() -> None:
    assert keys.IN_PROGRESSING_ANNOTATION == "rollouts.kruise.io/in-progressing"
    assert keys.STABLE_REVISION_LABEL == "rollouts.kruise.io/stable-revision"
    assert keys.ROLLOUT_HASH_ANNOTATION == "rollouts.kruise.io/hash"
    assert keys.ROLLING_STYLE_ANNOTATION == "rollouts.kruise.io/rolling-style"
    assert keys.TRAFFIC_ROUTING_ANNOTATION == "rollouts.kruise.io/trafficrouting"
    assert keys.ROLLOUT_FINALIZER == "rollouts.kruise.io/rollout"
    assert keys.BATCH_RELEASE_FINALIZER == "rollouts.kruise.io/batch-release-finalizer"
    assert keys.CANARY_DEPLOYMENT_FINALIZER == "finalizer.rollouts.kruise.io/batch-release"
    assert keys.progressing_rollout_finalizer("demo") == "progressing.rollouts.kruise.io/demo"


def test_public_names_are_pinned() -> None:
    assert sorted(api.__all__) == sorted(
        [
            *("BatchRelease", "BatchReleaseCanaryStatus", "BatchReleasePhase", "BatchReleaseSpec"),
            *("BatchReleaseStatus", "BatchReleaseV1alpha1", "BatchState", "BlueGreenStatus"),
            *("BlueGreenStrategy", "CanaryStatus", "CanaryStep", "CanaryStrategy", "CommonStatus"),
            *("ConditionStatus", "ConditionType", "ConversionError", "FinaliseReason", "FinalisingStep"),
            *("FinalizingPolicy", "GatewayTrafficRouting", "HTTPHeader", "HTTPHeaderFilter"),
            *("HTTPHeaderMatch", "HTTPPathMatch", "HTTPQueryParamMatch", "HeaderMatchType"),
            *("HttpRouteMatch", "IngressTrafficRouting", "IntOrString", "KubeModel", "ObjectRef"),
            *("PatchPodTemplateMetadata", "PathMatchType", "ProgressingReason", "QueryParamMatchType"),
            *("ReleaseBatch", "ReleasePlan", "RollingStyle", "Rollout", "RolloutCondition"),
            *("RolloutHistory", "RolloutHistoryPhase", "RolloutPause", "RolloutPhase", "RolloutSpec"),
            *("RolloutStatus", "RolloutStrategy", "StepState", "TerminatingReason", "TrafficRouting"),
            *("TrafficRoutingPhase", "TrafficRoutingRef", "WorkloadType", "convert", "is_percent"),
            *("is_real_partition", "keys", "percent", "release_plan_hash", "rollout_hash"),
            *("rollout_hash_from_obj", "rollout_v1alpha1", "scaled_int_or_percent"),
        ]
    )
    assert all(hasattr(api, name) for name in api.__all__)
