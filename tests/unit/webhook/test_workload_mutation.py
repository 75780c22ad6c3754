"""workload.py: the Deployment mutation of reference §2.2, as tables of (scenario change -> JSON Patch)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from graylane.webhook import admission as adm
from graylane.webhook.server import MutationRejected
from graylane.webhook.workload import (
    DeploymentMutator,
    active_replica_sets,
    is_effective_revision_change,
    mutate_deployment,
)

Obj = dict[str, Any]
NS, UID = "ns", "dep-uid"
WORKLOAD_TYPE = "rollouts.kruise.io/workload-type"
IN_PROGRESSING = "rollouts.kruise.io/in-progressing"
STRATEGY = "rollouts.kruise.io/deployment-strategy"
ORIGINAL_STRATEGY = "rollouts.kruise.io/original-deployment-strategy"
ROLLOUT_ID = "rollouts.kruise.io/rollout-id"
# JSON Patch paths (RFC 6901 escapes "/" as "~1").
PAUSED = "/spec/paused"
STABLE_PATH = "/metadata/labels/rollouts.kruise.io~1stable-revision"
IN_PROGRESSING_PATH = "/metadata/annotations/rollouts.kruise.io~1in-progressing"
STRATEGY_PATH = "/metadata/annotations/rollouts.kruise.io~1deployment-strategy"
HELD = '{"rolloutName":"ro"}'


def template(image: str, **labels: str) -> Obj:
    return {
        "metadata": {"creationTimestamp": None, "labels": {"app": "web", **labels}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }


def deployment(image: str = "demo:v1") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": NS,
            "uid": UID,
            "labels": {WORKLOAD_TYPE: "deployment"},
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": template(image),
        },
    }


def replica_set(pod_hash: str, image: str, revision: int, *, replicas: int = 5, owner: str = UID) -> Obj:
    owner_ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
        "uid": owner,
        "controller": True,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"web-{pod_hash}",
            "namespace": NS,
            "labels": {"app": "web", "pod-template-hash": pod_hash},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "creationTimestamp": f"2024-01-0{revision}T00:00:00Z",
            "ownerReferences": [owner_ref],
        },
        "spec": {"replicas": replicas, "template": template(image, **{"pod-template-hash": pod_hash})},
    }


def _no_revision(rs: Obj) -> Obj:
    del rs["metadata"]["annotations"]
    return rs


def rollout(name: str = "ro", *, style: str = "canary", phase: str = "Healthy") -> Obj:
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "strategy": {style: {"steps": [{"replicas": 1}, {"replicas": "100%"}]}},
        },
        "status": {"phase": phase},
    }


@dataclasses.dataclass
class Scenario:
    """Default: a user sets image v2 on a settled v1 Deployment that a canary Rollout manages."""

    old: Obj = dataclasses.field(default_factory=deployment)
    new: Obj = dataclasses.field(default_factory=lambda: deployment("demo:v2"))
    rollouts: list[Obj] = dataclasses.field(default_factory=lambda: [rollout()])
    replica_sets: list[Obj] = dataclasses.field(default_factory=lambda: [replica_set("aaa", "demo:v1", 1)])

    def both(self, change: Callable[[Obj], object]) -> None:
        change(self.old)
        change(self.new)

    def in_progressing(self, strategy: str | None = None, original: bool = False) -> None:
        """Both objects already carry the in-progressing annotation (and a style's marker)."""
        notes: Obj = {IN_PROGRESSING: HELD}
        if strategy is not None:
            notes[STRATEGY] = strategy
        if original:
            notes[ORIGINAL_STRATEGY] = '{"maxSurge":"25%"}'
        self.both(lambda d: d["metadata"].setdefault("annotations", {}).update(notes))
        self.both(lambda d: d["spec"].update(paused=True))

    def patch(self) -> dict[str, Any] | None:
        """What the API server would apply: {path: value} of the JSON Patch, or None when admitted as is."""
        out = mutate_deployment(self.new, self.old, self.rollouts, self.replica_sets)
        if out is None:
            return None
        return {op["path"]: op.get("value", op["op"]) for op in adm.json_patch(self.new, out)}


Step = Callable[[Scenario], object]


def run(*steps: Step) -> dict[str, Any] | None:
    scenario = Scenario()
    for step in steps:
        step(scenario)
    return scenario.patch()


# -- steps that change the default scenario -------------------------------------------------------------


def no_rollout(s: Scenario) -> None:
    s.rollouts.clear()


def ref(**fields: str) -> Step:
    return lambda s: s.rollouts[0]["spec"]["workloadRef"].update(fields)


def rollout_phase(phase: str) -> Step:
    return lambda s: s.rollouts[0]["status"].update(phase=phase)


def rollout_deleting(s: Scenario) -> None:
    s.rollouts[0]["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"


def empty_strategy(s: Scenario) -> None:
    s.rollouts[0]["spec"]["strategy"] = {}


def blue_green(s: Scenario) -> None:
    s.rollouts[0] = rollout(style="blueGreen")


def traffic(s: Scenario) -> None:
    s.rollouts[0]["spec"]["strategy"]["canary"]["trafficRoutings"] = [
        {"service": "web", "ingress": {"name": "w"}}
    ]


def new_labels(labels: dict[str, str]) -> Step:
    return lambda s: s.new["metadata"].update(labels=labels)


def new_spec(**fields: Any) -> Step:
    return lambda s: s.new["spec"].update(fields)


def drop_replicas(s: Scenario) -> None:
    del s.new["spec"]["replicas"]


def same_template(s: Scenario) -> None:
    s.new["spec"]["template"] = copy.deepcopy(s.old["spec"]["template"])


def hash_label_only(s: Scenario) -> None:
    s.new["spec"]["template"] = template("demo:v1", **{"pod-template-hash": "x"})


def nulls_only(s: Scenario) -> None:
    s.new["spec"]["template"] = {**copy.deepcopy(s.old["spec"]["template"]), "extra": None}


def injected_label(s: Scenario) -> None:
    same_template(s)
    s.new["spec"]["template"]["metadata"]["labels"]["sidecar"] = "injected"


def rollout_ids(old_id: str, new_id: str) -> Step:
    def step(s: Scenario) -> None:
        s.old["metadata"]["annotations"][ROLLOUT_ID] = old_id
        s.new["metadata"]["annotations"][ROLLOUT_ID] = new_id

    return step


def blank_uid(s: Scenario) -> None:
    s.new["metadata"]["uid"] = ""


def no_replica_sets(s: Scenario) -> None:
    s.replica_sets.clear()


def rs_spec(**fields: Any) -> Step:
    return lambda s: s.replica_sets[0]["spec"].update(fields)


def rs_meta(**fields: Any) -> Step:
    return lambda s: s.replica_sets[0]["metadata"].update(fields)


def rs_of_other_deployment(s: Scenario) -> None:
    s.replica_sets[0] = replica_set("aaa", "demo:v1", 1, owner="someone-else")


def second_active_rs(s: Scenario) -> None:
    s.replica_sets.append(replica_set("bbb", "demo:v1.5", 2))


def held(s: Scenario) -> None:
    """A canary release under way: both objects paused and annotated."""
    s.in_progressing()


def held_blue_green(s: Scenario) -> None:
    s.in_progressing(original=True)


def unpause_new(s: Scenario) -> None:
    s.new["spec"]["paused"] = False


def unpause_both(s: Scenario) -> None:
    s.old["spec"]["paused"] = s.new["spec"]["paused"] = False


def recreate_new(s: Scenario) -> None:
    s.new["spec"]["strategy"] = {"type": "Recreate"}


def _strategy(**fields: Any) -> str:
    """The strategy annotation as Kruise writes it (Go field order, compact)."""
    return json.dumps(fields, separators=(",", ":"))


def held_partition(**rolling: Any) -> Step:
    """A partition-style release under way: Recreate, paused, the strategy annotation."""
    fields: Obj = {"rollingStyle": "Partition", "rollingUpdate": rolling, "partition": "20%"}

    def step(s: Scenario) -> None:
        s.in_progressing(strategy=_strategy(**{k: v for k, v in fields.items() if v}))
        s.both(lambda d: d["spec"].update(strategy={"type": "Recreate"}))

    return step


def user_rolling_update(s: Scenario) -> None:
    s.new["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"},
    }


def zero_surge_and_unavailable(s: Scenario) -> None:
    s.new["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}


UNCHANGED: list[tuple[str, tuple[Step, ...]]] = [
    ("no Rollout at all (PR #278/#280)", (no_rollout,)),
    ("Rollout of another workload", (ref(name="other"),)),
    ("Rollout of another kind", (ref(kind="StatefulSet"),)),
    ("Rollout of another API group", (ref(apiVersion="x.io/v1"),)),
    ("unparsable workloadRef apiVersion", (ref(apiVersion="a/b/c"),)),
    ("Rollout phase Disabled", (rollout_phase("Disabled"),)),
    ("Rollout being deleted", (rollout_deleting,)),
    ("Rollout with neither canary nor blueGreen", (empty_strategy,)),
    ("workload-type label removed by the update", (new_labels({}),)),
    (
        "control-plane=controller-manager",
        (new_labels({WORKLOAD_TYPE: "d", "control-plane": "controller-manager"}),),
    ),
    ("replicas 0", (new_spec(replicas=0),)),
    ("template unchanged (a scale)", (same_template, new_spec(replicas=9))),
    ("only the pod-template-hash label differs", (hash_label_only,)),
    ("only null versus absent fields differ", (nulls_only,)),
    ("rollout-id annotation unchanged, template changed", (rollout_ids("r1", "r1"),)),
    ("no ReplicaSet", (no_replica_sets,)),
    ("ReplicaSet scaled to 0", (rs_spec(replicas=0),)),
    ("ReplicaSet being deleted", (rs_meta(deletionTimestamp="2024-01-01T00:00:00Z"),)),
    ("ReplicaSet controlled by another Deployment", (rs_of_other_deployment,)),
    ("ReplicaSet not selected", (rs_meta(labels={"app": "other"}),)),
    ("traffic routing with 2 active ReplicaSets", (traffic, second_active_rs)),
    ("in progressing but the Rollout is gone (PR #278/#280)", (held, unpause_new, no_rollout)),
    ("canary in progressing, still paused", (held,)),
    ("blue-green in progressing, no new revision", (held_blue_green, same_template)),
]


@pytest.mark.parametrize("steps", [c for _, c in UNCHANGED], ids=[i for i, _ in UNCHANGED])
def test_admitted_unchanged(steps: tuple[Step, ...]) -> None:
    assert run(*steps) is None


ENTERED = {PAUSED: True, STABLE_PATH: "aaa", IN_PROGRESSING_PATH: HELD}
WITHOUT_STABLE = {PAUSED: True, IN_PROGRESSING_PATH: HELD}
DEFAULT_ROLLING = {"maxUnavailable": "25%", "maxSurge": "25%"}

MUTATED: list[tuple[str, tuple[Step, ...], dict[str, Any]]] = [
    ("image change: paused, stable revision, in-progressing", (), ENTERED),
    ("a blue-green Rollout enters the same way", (blue_green,), ENTERED),
    ("a Disabling (not yet Disabled) Rollout still counts", (rollout_phase("Disabling"),), ENTERED),
    ("replicas unset is not 0", (drop_replicas,), ENTERED),
    ("traffic routing with a single active ReplicaSet", (traffic,), ENTERED),
    ("no traffic routing: 2 active ReplicaSets are fine", (second_active_rs,), ENTERED),
    (
        "rollout-id bumped, template unchanged (no differing RS, no label)",
        (same_template, rollout_ids("r1", "r2")),
        WITHOUT_STABLE,
    ),
    # Kruise behaviour kept (openkruise/rollouts#267): a label injected into the pod template is a release.
    ("a label injected into the pod template", (injected_label,), ENTERED),
    (
        "blank uid: filled from the old object, ReplicaSets found by it",
        (blank_uid,),
        {**ENTERED, "/metadata/uid": UID},
    ),
    ("canary in progressing: unpausing is undone", (held, unpause_new), {PAUSED: True}),
    (
        "canary in progressing: a switch to Recreate restores the old strategy",
        (held, recreate_new),
        {
            "/spec/strategy/type": "RollingUpdate",
            "/spec/strategy/rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
    ),
    ("blue-green in progressing: a new revision is paused", (held_blue_green, unpause_both), {PAUSED: True}),
    (
        "blue-green in progressing: Recreate is forbidden",
        (held_blue_green, same_template, recreate_new),
        {"/spec/strategy/type": "RollingUpdate"},
    ),
    (
        "partition in progressing: Recreate forced, rollingUpdate moved into the annotation",
        (held_partition(**DEFAULT_ROLLING), same_template, user_rolling_update),
        {
            "/spec/strategy/type": "Recreate",
            "/spec/strategy/rollingUpdate": "remove",
            STRATEGY_PATH: _strategy(
                rollingStyle="Partition",
                rollingUpdate={"maxUnavailable": "10%", "maxSurge": 0},
                partition="20%",
            ),
        },
    ),
    (
        "partition in progressing: a new revision pauses the annotation (defaults filled)",
        (held_partition(),),
        {
            STRATEGY_PATH: _strategy(
                rollingStyle="Partition", rollingUpdate=DEFAULT_ROLLING, paused=True, partition="20%"
            )
        },
    ),
    (
        "partition in progressing: unpausing is undone",
        (held_partition(**DEFAULT_ROLLING), same_template, unpause_new),
        {PAUSED: True},
    ),
    (
        "partition in progressing: maxSurge 0 with maxUnavailable 0 becomes 0/1",
        (held_partition(), zero_surge_and_unavailable),
        {
            "/spec/strategy/rollingUpdate": "remove",
            STRATEGY_PATH: _strategy(
                rollingStyle="Partition",
                rollingUpdate={"maxUnavailable": 1, "maxSurge": 0},
                paused=True,
                partition="20%",
            ),
        },
    ),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [(c, e) for _, c, e in MUTATED], ids=[i for i, _, _ in MUTATED]
)
def test_mutated(steps: tuple[Step, ...], expected: dict[str, Any]) -> None:
    assert run(*steps) == expected


def test_the_input_objects_are_not_changed() -> None:
    scenario = Scenario()
    before = copy.deepcopy(scenario)

    scenario.patch()

    assert scenario == before


# -- which ReplicaSet is stable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replica_sets", "stable"),
    [
        pytest.param(
            [
                replica_set("ccc", "demo:v2", 3),
                replica_set("bbb", "demo:v1.5", 2),
                replica_set("aaa", "demo:v1", 1, replicas=0),
            ],
            "bbb",
            id="oldest active revision whose template differs; inactive and new-template RS skipped",
        ),
        pytest.param(
            [replica_set("ccc", "demo:v3", 10), replica_set("bbb", "demo:v1.5", 9)],
            "bbb",
            id="revision compared as a number, not as text",
        ),
        pytest.param(
            [
                _no_revision(replica_set("late", "demo:v1", 2)),
                _no_revision(replica_set("early", "demo:v1", 1)),
            ],
            "early",
            id="without revisions the creation time decides",
        ),
    ],
)
def test_stable_revision_label(replica_sets: list[Obj], stable: str) -> None:
    scenario = Scenario(replica_sets=replica_sets)

    patch = scenario.patch()

    assert patch is not None
    assert patch[STABLE_PATH] == stable


# -- the effectiveness rule and the ReplicaSet filter --------------------------------------------------------


def _with_ids(old_id: str | None, new_id: str | None, image: str) -> tuple[Obj, Obj]:
    old, new = deployment(), deployment(image)
    for obj, value in ((old, old_id), (new, new_id)):
        if value is not None:
            obj["metadata"]["annotations"] = {ROLLOUT_ID: value}
    return old, new


@pytest.mark.parametrize(
    ("old_id", "new_id", "image", "effective"),
    [
        (None, None, "demo:v2", True),
        (None, None, "demo:v1", False),
        ("r1", "r1", "demo:v2", False),  # with an id only a new id counts
        ("r1", "r2", "demo:v1", True),
        (None, "r1", "demo:v1", True),
        ("r1", "", "demo:v2", True),  # an emptied id falls back to the template
        ("r1", "", "demo:v1", False),
    ],
)
def test_rollout_id_annotation_rule(
    old_id: str | None, new_id: str | None, image: str, effective: bool
) -> None:
    old, new = _with_ids(old_id, new_id, image)

    assert is_effective_revision_change(old, new) is effective


def _selector(**selector: Any) -> Obj:
    dep = deployment()
    dep["spec"]["selector"] = selector
    return dep


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, True),
        ({}, True),  # an empty selector selects everything
        ({"matchLabels": {"app": "api"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, False),
    ],
)
def test_replica_sets_are_filtered_by_the_deployment_selector(selector: Obj, selected: bool) -> None:
    rs = replica_set("aaa", "demo:v1", 1)

    assert bool(active_replica_sets(_selector(**selector), [rs])) is selected


def test_a_missing_selector_selects_nothing() -> None:
    dep = deployment()
    del dep["spec"]["selector"]

    assert active_replica_sets(dep, [replica_set("aaa", "demo:v1", 1)]) == []


# -- the I/O shell ------------------------------------------------------------------------------------------


class FakeLister:
    def __init__(self, scenario: Scenario, *, fail_rollouts: bool = False, fail_rs: bool = False) -> None:
        self.scenario, self.fail_rollouts, self.fail_rs = scenario, fail_rollouts, fail_rs
        self.asked: list[tuple[str, str]] = []
        self.owner_uids: list[str | None] = []

    async def list_rollouts(self, namespace: str) -> list[Obj]:
        self.asked.append(("rollouts", namespace))
        if self.fail_rollouts:
            raise ConnectionError("apiserver unreachable")
        return copy.deepcopy(self.scenario.rollouts)

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> list[Obj]:
        self.asked.append(("replicasets", namespace))
        self.owner_uids.append(owner_uid)
        if self.fail_rs:
            raise ConnectionError("apiserver unreachable")
        return copy.deepcopy(self.scenario.replica_sets)


def request(scenario: Scenario) -> adm.AdmissionRequest:
    return adm.AdmissionRequest(
        review_version="admission.k8s.io/v1",
        uid="req-1",
        operation="UPDATE",
        group="apps",
        version="v1",
        kind="Deployment",
        resource="deployments",
        sub_resource="",
        namespace=NS,
        name="web",
        object=scenario.new,
        old_object=scenario.old,
    )


async def _mutate(scenario: Scenario, lister: FakeLister) -> Obj | None:
    return await DeploymentMutator(lister, lister).mutate(request(scenario))


async def test_the_mutator_answers_what_the_decision_says() -> None:
    scenario = Scenario()
    lister = FakeLister(scenario)

    out = await _mutate(scenario, lister)

    assert out == mutate_deployment(scenario.new, scenario.old, scenario.rollouts, scenario.replica_sets)
    assert lister.asked == [("rollouts", NS), ("replicasets", NS)]
    assert lister.owner_uids == [UID]  # a cache answers from its owner index


async def test_without_a_rollout_replica_sets_are_not_listed() -> None:
    scenario = Scenario(rollouts=[])
    lister = FakeLister(scenario)

    assert await _mutate(scenario, lister) is None
    assert lister.asked == [("rollouts", NS)]


async def test_an_ongoing_release_does_not_list_replica_sets() -> None:
    scenario = Scenario()
    held(scenario)
    unpause_new(scenario)
    lister = FakeLister(scenario)

    out = await _mutate(scenario, lister)

    assert out is not None
    assert out["spec"]["paused"] is True
    assert lister.asked == [("rollouts", NS)]


async def test_failing_to_list_rollouts_rejects_the_update() -> None:
    scenario = Scenario()

    with pytest.raises(MutationRejected, match="listing Rollouts") as raised:
        await _mutate(scenario, FakeLister(scenario, fail_rollouts=True))

    assert raised.value.code == 400


async def test_failing_to_list_replica_sets_admits_unchanged_as_kruise_does() -> None:
    scenario = Scenario()

    assert await _mutate(scenario, FakeLister(scenario, fail_rs=True)) is None


class FreshReader:
    """The API's answer for one Rollout (None: gone), as the cache may not show it yet."""

    def __init__(self, rollout: Obj | None, *, fail: bool = False) -> None:
        self.rollout, self.fail = rollout, fail
        self.asked: list[tuple[str, str]] = []

    async def get_rollout(self, namespace: str, name: str) -> Obj | None:
        self.asked.append((namespace, name))
        if self.fail:
            raise ConnectionError("apiserver unreachable")
        return copy.deepcopy(self.rollout)


def _deleted(ro: Obj) -> Obj:
    return {**ro, "metadata": {**ro["metadata"], "deletionTimestamp": "2026-11-22T12:00:00Z"}}


def _disabled(ro: Obj) -> Obj:
    return {**ro, "status": {**(ro.get("status") or {}), "phase": "Disabled"}}


@pytest.mark.parametrize("fresh", [_deleted, _disabled, lambda ro: None])
async def test_a_new_hold_is_not_taken_for_a_rollout_the_api_shows_deleted_or_disabled(
    fresh: Callable[[Obj], Obj | None],
) -> None:
    """Issue 10 item 6: the cache still shows the Rollout alive, the API does not: no hold, so none can
    outlive a Rollout whose last pass already checked the workload."""
    scenario = Scenario()
    lister = FakeLister(scenario)
    reader = FreshReader(fresh(scenario.rollouts[0]))

    assert await DeploymentMutator(lister, lister, reader).mutate(request(scenario)) is None
    assert reader.asked == [(NS, scenario.rollouts[0]["metadata"]["name"])]


@pytest.mark.parametrize("fail", [False, True])  # alive, or the read failed: the cache's answer stands
async def test_a_new_hold_for_a_live_rollout_is_taken(fail: bool) -> None:
    scenario = Scenario()
    lister = FakeLister(scenario)
    reader = FreshReader(scenario.rollouts[0], fail=fail)

    out = await DeploymentMutator(lister, lister, reader).mutate(request(scenario))

    assert out == mutate_deployment(scenario.new, scenario.old, scenario.rollouts, scenario.replica_sets)
    assert out is not None
    assert IN_PROGRESSING in out["metadata"]["annotations"]


async def test_a_hold_in_place_is_kept_without_reading_the_rollout() -> None:
    scenario = Scenario()
    held(scenario)
    unpause_new(scenario)
    lister = FakeLister(scenario)
    reader = FreshReader(None)

    out = await DeploymentMutator(lister, lister, reader).mutate(request(scenario))

    assert out is not None
    assert out["spec"]["paused"] is True
    assert reader.asked == []


def _recreated(ro: Obj) -> Obj:
    """The copy the API has after `kubectl delete` and a new `kubectl create` of the same Rollout."""
    return {**ro, "metadata": {**ro["metadata"], "uid": "rollout-2"}}


@pytest.mark.parametrize(("cached", "api"), [(_disabled, lambda ro: ro), (_deleted, _recreated)])
async def test_a_release_the_cache_shows_for_a_disabled_or_deleted_rollout_is_held_on_the_api_one(
    cached: Callable[[Obj], Obj], api: Callable[[Obj], Obj]
) -> None:
    """Chaos seed 3: the API server restarted just after the lane re-enabled its Rollout; the next image
    reached the webhook while the Rollout informer still showed the Rollout Disabled, went through unheld
    and rolled natively, and the Rollout, Healthy, never released it."""
    scenario = Scenario()
    live = scenario.rollouts[0]
    scenario.rollouts = [cached(live)]
    assert scenario.patch() is None  # what the cache alone decides
    lister = FakeLister(scenario)
    reader = FreshReader(api(live))

    out = await DeploymentMutator(lister, lister, reader).mutate(request(scenario))

    assert out == mutate_deployment(scenario.new, scenario.old, [api(live)], scenario.replica_sets)
    assert out is not None
    assert IN_PROGRESSING in out["metadata"]["annotations"]
    assert reader.asked == [(NS, live["metadata"]["name"])]  # once: the API's copy needs no confirming


@pytest.mark.parametrize("api", [_disabled, lambda ro: None])  # still disabled, or gone
@pytest.mark.parametrize("fail", [False, True])  # or the read failed: the cache's answer stands
async def test_a_release_for_a_rollout_the_api_also_shows_disabled_or_gone_is_admitted(
    api: Callable[[Obj], Obj | None], fail: bool
) -> None:
    scenario = Scenario()
    scenario.rollouts = [_disabled(scenario.rollouts[0])]
    lister = FakeLister(scenario)
    reader = FreshReader(api(scenario.rollouts[0]), fail=fail)

    assert await DeploymentMutator(lister, lister, reader).mutate(request(scenario)) is None
    assert len(reader.asked) == 1


@pytest.mark.parametrize("step", [held, lambda s: s.new["spec"].update(replicas=7)])  # no new release
async def test_a_disabled_rollout_is_not_read_again_for_what_is_no_release(step: Step) -> None:
    scenario = Scenario()
    step(scenario)
    if step is not held:
        scenario.new["spec"]["template"] = copy.deepcopy(scenario.old["spec"]["template"])
    scenario.rollouts = [_disabled(scenario.rollouts[0])]
    lister = FakeLister(scenario)
    reader = FreshReader(scenario.rollouts[0])

    await DeploymentMutator(lister, lister, reader).mutate(request(scenario))

    assert reader.asked == []


class ApiReplicaSets:
    """The ReplicaSets as the API server has them, when the webhook's cache lags behind."""

    def __init__(self, replica_sets: list[Obj], *, fail: bool = False) -> None:
        self.replica_sets, self.fail = replica_sets, fail
        self.asked: list[tuple[str, str | None]] = []

    async def list_replicasets(self, namespace: str, owner_uid: str | None = None) -> list[Obj]:
        self.asked.append((namespace, owner_uid))
        if self.fail:
            raise ConnectionError("apiserver unreachable")
        return copy.deepcopy(self.replica_sets)


def _settling(s: Scenario) -> None:
    """The cache still shows the previous release's old ReplicaSet with pods beside the new one."""
    traffic(s)
    s.replica_sets = [replica_set("aaa", "demo:v0", 1, replicas=1), replica_set("bbb", "demo:v1", 2)]


async def test_a_release_the_stale_cache_would_let_through_is_held_on_the_api_replica_sets() -> None:
    """Chaos seed 5: the ReplicaSet cache was 25 s behind (a reconnect's back-off) and still showed the
    previous release's old ReplicaSet with a pod, so with traffic routing (one active ReplicaSet needed)
    the next image went to the native controller and the Rollout never ran that release."""
    scenario = Scenario()
    _settling(scenario)
    assert scenario.patch() is None  # what the cache alone decides
    lister = FakeLister(scenario)
    api = ApiReplicaSets([replica_set("aaa", "demo:v0", 1, replicas=0), replica_set("bbb", "demo:v1", 2)])

    out = await DeploymentMutator(lister, lister, None, api).mutate(request(scenario))

    assert out is not None
    assert out["spec"]["paused"] is True
    assert IN_PROGRESSING in out["metadata"]["annotations"]
    assert out["metadata"]["labels"]["rollouts.kruise.io/stable-revision"] == "bbb"
    assert api.asked == [(NS, UID)]


@pytest.mark.parametrize("fail", [False, True])  # still two versions, or the read failed
async def test_a_release_the_api_also_shows_unsettled_is_admitted_unchanged(fail: bool) -> None:
    scenario = Scenario()
    _settling(scenario)
    lister = FakeLister(scenario)
    api = ApiReplicaSets(copy.deepcopy(scenario.replica_sets), fail=fail)

    assert await DeploymentMutator(lister, lister, None, api).mutate(request(scenario)) is None
    assert api.asked == [(NS, UID)]


@pytest.mark.parametrize(
    "step",
    [lambda s: None, lambda s: s.new["spec"].update(replicas=7), held],  # held, not a release, ongoing
)
async def test_replica_sets_are_not_read_again_when_the_cache_decides_nothing_of_it(step: Step) -> None:
    scenario = Scenario()
    step(scenario)
    if step is not held:
        scenario.new["spec"]["template"] = copy.deepcopy(scenario.old["spec"]["template"])
    lister = FakeLister(scenario)
    api = ApiReplicaSets([])

    await DeploymentMutator(lister, lister, None, api).mutate(request(scenario))

    assert api.asked == []
