"""`graylane plan`: pods per step (the controller's arithmetic), pauses, traffic objects, undo, FILE input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from graylane.api.rollout_v1beta1 import HttpRouteMatch, Rollout
from graylane.cli.main import cli
from graylane.planview import (
    PlanError,
    ingress_annotations,
    plan_rollout,
    rollout_from_documents,
)

V1ALPHA1_SEED = {
    "apiVersion": "rollouts.kruise.io/v1alpha1",
    "kind": "Rollout",
    "metadata": {"name": "demo"},
    "spec": {
        "objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}},
        "strategy": {
            "canary": {
                "steps": [
                    {"weight": 10, "replicas": 1, "pause": {}},
                    {"weight": 30, "replicas": 2, "pause": {}},
                ]
            }
        },
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "demo"},
    "spec": {"replicas": 5},
}


def v1beta1(
    steps: list[dict[str, Any]], *, extra: bool = True, routings: list[dict[str, Any]] | None = None
) -> Rollout:
    canary: dict[str, Any] = {"steps": steps, "enableExtraWorkloadForCanary": extra}
    if routings:
        canary["trafficRoutings"] = routings
    return Rollout.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "ns"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {"canary": canary},
            },
        }
    )


def pods(rollout: Rollout, replicas: int = 5) -> list[tuple[int, int]]:
    return [(s.stable_pods, s.canary_pods) for s in plan_rollout(rollout, replicas).steps]


def test_seed_one_v1alpha1_weights_give_one_then_two_canary_pods() -> None:
    rollout, replicas = rollout_from_documents([DEPLOYMENT, V1ALPHA1_SEED])
    assert replicas == 5
    plan = plan_rollout(rollout, 5)
    assert plan.style == "canary"  # v1alpha1 without the rolling-style annotation is canary style
    assert [(s.stable_pods, s.canary_pods, s.traffic, s.pause) for s in plan.steps] == [
        (5, 1, "10%", "approval"),
        (5, 2, "30%", "approval"),
    ]
    assert "steps ask for traffic but the Rollout has no trafficRoutings: only pods move" in plan.notes


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(True, [(5, 1), (5, 5)]), (False, [(4, 1), (1, 4)])],
    ids=["canary-style", "partition-style"],
)
def test_seed_two_twenty_then_ninety_percent(extra: bool, expected: list[tuple[int, int]]) -> None:
    rollout = v1beta1([{"replicas": "20%", "pause": {}}, {"replicas": "90%", "pause": {}}], extra=extra)
    assert pods(rollout) == expected


def test_pause_kinds_follow_the_step_machine() -> None:
    steps: list[dict[str, Any]] = [
        {"replicas": 1, "pause": {"duration": 30}},
        {"replicas": 2, "pause": {}},
        {"replicas": "100%"},
    ]
    assert [s.pause for s in plan_rollout(v1beta1(steps), 5).steps] == [
        "30s",
        "approval",
        "none (last step at 100%)",
    ]
    # An integer last step equal to the replicas still pauses: the controller compares with "100%" only.
    assert plan_rollout(v1beta1([{"replicas": 5}]), 5).steps[0].pause == "approval"


def test_workload_objects_and_undo_per_style() -> None:
    canary = plan_rollout(v1beta1([{"replicas": 1, "pause": {}}, {"replicas": 2, "pause": {}}]), 5)
    assert canary.steps[0].objects == [
        "BatchRelease demo: created, batchPartition 0",
        "Deployment demo-xxxxx (rollouts.kruise.io/canary-deployment=demo): "
        "created from the Deployment's template, scaled to 1",
    ]
    assert canary.steps[1].objects[0] == "BatchRelease demo: patched, batchPartition 1"
    assert (
        "canary Deployment deleted (2 canary pods removed), 5 stable pods untouched" in canary.steps[1].undo
    )
    partition = plan_rollout(v1beta1([{"replicas": "40%", "pause": {}}], extra=False), 5)
    assert partition.steps[0].objects[1] == "Deployment demo: partition 2 new pods"
    assert "its 2 new pods are replaced by stable ones, ending with 5 stable pods" in partition.steps[0].undo
    assert "resumes and rolls all 5 pods to the new version" in canary.completion


def test_ingress_annotations_match_kruises_nginx_e2e() -> None:
    matches = [
        HttpRouteMatch.from_obj(
            {"headers": [{"name": "user_id", "value": "123456", "type": "RegularExpression"}]}
        ),
        HttpRouteMatch.from_obj({"headers": [{"name": "canary-by-cookie", "value": "demo"}]}),
    ]
    prefix = "nginx.ingress.kubernetes.io"
    assert ingress_annotations("nginx", None, matches) == {
        f"{prefix}/canary": "true",
        f"{prefix}/canary-by-header": "user_id",
        f"{prefix}/canary-by-header-pattern": "123456",
        f"{prefix}/canary-by-cookie": "demo",
    }
    assert ingress_annotations("", 30, []) == {f"{prefix}/canary": "true", f"{prefix}/canary-weight": "30"}
    assert ingress_annotations("aliyun-alb", 5, [])["alb.ingress.kubernetes.io/order"] == "1"
    assert ingress_annotations("my-class", 5, []) == {}


def test_traffic_objects_are_listed_apart_from_pods() -> None:
    routings = [{"service": "svc", "ingress": {"name": "ing"}, "gateway": {"httpRouteName": "route"}}]
    steps = [
        {"replicas": "20%", "traffic": "20%", "pause": {}},
        {"replicas": "40%", "traffic": "40%", "pause": {}},
        {"replicas": "60%", "pause": {}},
    ]
    plan = plan_rollout(v1beta1(steps, routings=routings), 5)
    first, second, third = (s.traffic_objects for s in plan.steps)
    assert first[:2] == [
        "Service svc: selector += pod-template-hash=<stable revision>",
        "Service svc-canary: created (copy of the stable Service), selector pod-template-hash=<new revision>",
    ]
    assert "HTTPRoute route: backendRefs svc weight 80, svc-canary weight 20" in first
    assert "HTTPRoute route: backendRefs svc weight 60, svc-canary weight 40" in second
    assert any(o.startswith("Ingress ing-canary: patched") and "canary-weight=40" in o for o in second)
    assert third == [
        "Service svc: pod-template-hash selector removed; routes back to svc only",
        "Service svc-canary: deleted",
    ]
    assert all("Service" not in o for s in plan.steps for o in s.objects)  # traffic never mixed with pods
    assert plan.steps[0].undo.endswith("traffic is routed back to stable first")


def test_custom_network_refs_are_rewritten_by_their_lua_script() -> None:
    vs = {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "name": "vs"}
    steps = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": 2, "traffic": "50%", "pause": {}}]
    plan = plan_rollout(v1beta1(steps, routings=[{"service": "svc", "customNetworkRefs": [vs]}]), 5)
    first, second = (s.traffic_objects for s in plan.steps)
    assert first[-1] == (
        "VirtualService vs: original kept in annotation original-spec-configuration, rewritten by the Lua "
        "script lua.traffic.routing.VirtualService.networking.istio.io (canary weight 20, stable service svc)"
    )
    assert second[-1].startswith("VirtualService vs: rewritten by the Lua script")
    assert "canary weight 50" in second[-1]


def test_documents_errors() -> None:
    with pytest.raises(PlanError, match="found 0"):
        rollout_from_documents([DEPLOYMENT])
    _, replicas = rollout_from_documents([V1ALPHA1_SEED, None, "text"])
    assert replicas is None
    with pytest.raises(PlanError, match="no steps"):
        plan_rollout(v1beta1([]), 5)


def test_plan_command_reads_a_multi_document_file(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(yaml.safe_dump_all([DEPLOYMENT, V1ALPHA1_SEED]))
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    assert "Step 1: 5 stable + 1 canary pods, traffic 10%, pause: approval" in result.output
    assert "Step 2: 5 stable + 2 canary pods, traffic 30%, pause: approval" in result.output
    data = yaml.safe_load(
        CliRunner().invoke(cli, ["plan", str(path), "--replicas", "10", "-o", "yaml"]).output
    )
    assert [s["canary_pods"] for s in data["steps"]] == [1, 2]
    assert data["replicas"] == 10


def test_plan_command_needs_replicas_when_the_file_has_no_workload(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(V1ALPHA1_SEED))
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 1
    assert "replica count is unknown" in result.output


# -- refusing what the API server refuses ------------------------------------------------------------


def _v1beta1_doc(name: str, step: dict[str, Any], workload: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": workload},
            "strategy": {"canary": {"steps": [step]}},
        },
    }


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
    }


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ({"replicas": [1]}, "spec.strategy.canary.steps[0].replicas: Input should be a valid integer"),
        (
            {"replicas": 1, "traffic": 5},
            "spec.strategy.canary.steps[0].traffic: Input should be a valid string",
        ),
        ({"replicas": 1, "pause": {"duration": "x"}}, "spec.strategy.canary.steps[0].pause.duration:"),
        ({"replicas": 0}, "replicas must be positive number"),
        ({"replicas": 1, "traffic": "150%"}, 'traffic must be percentage with "0%" < traffic <= "100%"'),
    ],
)
def test_plan_refuses_in_one_line_what_kubectl_apply_would_be_refused(
    tmp_path: Path, step: dict[str, Any], said: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump_all([_deployment("demo", 5), _v1beta1_doc("demo", step)]))
    result = CliRunner().invoke(cli, ["plan", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)  # never a traceback
    lines = result.output.strip().split("\n")
    assert lines[0] == "Error: refused, as the API server would:"
    assert len(lines) == 2, lines
    assert lines[1].startswith("rollout ns/demo: ")
    assert said in lines[1]


def test_plan_refuses_two_rollouts_of_one_workload_as_the_conflict_checker() -> None:
    from graylane.cli.plan import Input, refusals

    items = [Input(_v1beta1_doc(n, {"replicas": 1}), "ns") for n in ("a", "b")]
    lines = refusals(items, {})
    assert len(lines) == 2
    assert all("one workload only have less than one Rollout" in line for line in lines)


def test_plan_handles_several_rollouts_per_file(tmp_path: Path) -> None:
    docs = [
        _deployment("one", 4),
        _deployment("two", 10),
        _v1beta1_doc("one", {"replicas": 1}, "one"),
        _v1beta1_doc("two", {"replicas": "50%"}, "two"),
    ]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(cli, ["plan", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    plans = json.loads(result.stdout)
    assert [(p["name"], p["replicas"], p["steps"][0]["canary_pods"]) for p in plans] == [
        ("one", 4, 1),
        ("two", 10, 5),
    ]


def test_a_blue_green_plan_shows_both_versions_and_pauses_at_its_last_step() -> None:
    from graylane.api.rollout_v1beta1 import Rollout
    from graylane.planview import plan_rollout

    rollout = Rollout.from_obj(
        {
            "metadata": {"name": "demo", "namespace": "default"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "strategy": {
                    "blueGreen": {
                        "steps": [
                            {"replicas": "50%", "traffic": "0%", "pause": {}},
                            {"replicas": "100%", "traffic": "100%", "pause": {}},
                        ],
                        "trafficRoutings": [{"service": "demo", "ingress": {"name": "demo"}}],
                    }
                },
            },
        }
    )
    plan = plan_rollout(rollout, 5)
    assert plan.style == "blue-green"
    assert [(s.stable_pods, s.canary_pods) for s in plan.steps] == [(5, 3), (5, 5)]
    assert [s.pause for s in plan.steps] == ["approval", "approval"]
    assert [s.traffic for s in plan.steps] == ["0%", "100%"]
    assert plan.notes == []
