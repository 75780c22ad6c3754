"""Hypothesis strategies for the webhook fuzzer: Rollouts (v1alpha1, v1beta1) and TrafficRoutings.

`realistic_v1beta1` is what a user writes for an Ingress canary. `valid_ish_*` build objects from
pieces — mostly what a user writes, with values on and around every boundary the rules draw (replicas
and traffic from -20% to 150%, weights -5..160, negative grace periods, unknown kinds and class types,
empty names, several routings). `hostile` then takes such an object and breaks one place in it: a key
deleted, or its value replaced by a wrong type, a number far beyond int64, a unicode or NUL-bearing
string, an empty list or object, or an object nested 40 deep. Names are left out: the fuzzer gives each
example its own.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

Obj = dict[str, Any]

NAMES = st.sampled_from(["web", "web", "web", "web", "other", ""])
_GOOD_WORKLOAD = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"}
WORKLOADS = st.sampled_from(
    [
        *[_GOOD_WORKLOAD] * 6,
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "demo"},
        {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "demo"},
        {"apiVersion": "example.com/v1", "kind": "Foo", "name": "demo"},
        {"apiVersion": "v1", "kind": "Deployment", "name": "demo"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
    ]
).map(dict)
PERCENT = st.integers(-20, 150).map(lambda n: f"{n}%")
GOOD_PERCENT = st.integers(1, 100).map(lambda n: f"{n}%")
# Mostly values a user writes, sometimes one on or beyond a boundary.
REPLICAS = st.one_of(
    st.integers(1, 6),
    GOOD_PERCENT,
    st.integers(1, 6),
    GOOD_PERCENT,
    st.one_of(st.integers(-3, 12), PERCENT, st.sampled_from(["50", "abc", "%", "1.5%", "", "+10%"])),
)
TRAFFIC = st.one_of(
    GOOD_PERCENT, GOOD_PERCENT, GOOD_PERCENT, PERCENT, st.sampled_from(["abc", "5", "0%", "20.5%"])
)
WEIGHT = st.one_of(st.integers(1, 100), st.integers(1, 100), st.integers(1, 100), st.integers(-5, 160))
HEADER = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["x-canary", "canary-by-cookie", "User-Agent", "stage"]),
        "value": st.sampled_from(["gray", "a.*", "ü", "canary"]),
    },
    optional={"type": st.sampled_from(["Exact", "RegularExpression"])},
)
QUERY = st.fixed_dictionaries(
    {"name": st.sampled_from(["env", "q"]), "value": st.sampled_from(["gray", "1"])},
    optional={"type": st.sampled_from(["Exact", "RegularExpression"])},
)
PATH = st.fixed_dictionaries(
    {"value": st.sampled_from(["/", "/beta"])}, optional={"type": st.sampled_from(["PathPrefix", "Exact"])}
)
MATCH = st.fixed_dictionaries(
    {},
    optional={
        "headers": st.lists(HEADER, max_size=2, unique_by=lambda h: h["name"]),
        "queryParams": st.lists(QUERY, max_size=2, unique_by=lambda q: q["name"]),
        "path": PATH,
    },
)
HEADER_MODIFIER = st.fixed_dictionaries(
    {"set": st.just([{"name": "x-mse-tag", "value": "gray"}])}, optional={"remove": st.just(["x-old"])}
)
PAUSE = st.one_of(st.just({}), st.fixed_dictionaries({"duration": st.integers(-5, 30)}))
CUSTOM_REF = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["networking.istio.io/v1", "gateway.solo.io/v1", "example.com/v1"]),
        "kind": st.sampled_from(["VirtualService", "DestinationRule", "Foo"]),
        "name": NAMES,
    }
)
ROUTING = st.fixed_dictionaries(
    {"service": NAMES},
    optional={
        "gracePeriodSeconds": st.integers(-2, 3),
        "ingress": st.fixed_dictionaries(
            {"name": NAMES},
            optional={"classType": st.sampled_from(["nginx", "mse", "higress", "aliyun-alb", "unknown"])},
        ),
        "gateway": st.fixed_dictionaries({}, optional={"httpRouteName": NAMES}),
        "customNetworkRefs": st.lists(CUSTOM_REF, max_size=2),
    },
)


def _step(traffic_key: str, traffic: st.SearchStrategy[Any]) -> st.SearchStrategy[Obj]:
    optional = {
        traffic_key: traffic,
        "matches": st.lists(MATCH, max_size=2),
        "pause": PAUSE,
        "requestHeaderModifier": HEADER_MODIFIER,
    }
    with_replicas = st.fixed_dictionaries({"replicas": REPLICAS}, optional=optional)
    return st.one_of(
        with_replicas, with_replicas, with_replicas, st.fixed_dictionaries({}, optional=optional)
    )


def _steps(step: st.SearchStrategy[Obj]) -> st.SearchStrategy[list[Obj]]:
    some = st.lists(step, min_size=1, max_size=4)
    return st.one_of(*[some] * 7, st.just([]))


BETA_STEPS = _steps(_step("traffic", TRAFFIC))
ALPHA_STEPS = _steps(_step("weight", WEIGHT))


@st.composite
def valid_ish_v1beta1(draw: st.DrawFn) -> Obj:
    body = draw(
        st.fixed_dictionaries(
            {"steps": BETA_STEPS},
            optional={
                "trafficRoutings": st.lists(ROUTING, max_size=2),
                "enableExtraWorkloadForCanary": st.booleans(),
                "disableGenerateCanaryService": st.booleans(),
            },
        )
    )
    style = draw(st.sampled_from(["canary"] * 6 + ["blueGreen", "both", "none"]))
    strategy: Obj = {}
    if style in ("canary", "both"):
        strategy["canary"] = body
    if style in ("blueGreen", "both"):
        strategy["blueGreen"] = {k: v for k, v in body.items() if k != "enableExtraWorkloadForCanary"}
    spec: Obj = {"workloadRef": draw(WORKLOADS), "strategy": strategy}
    if draw(st.booleans()):
        spec["disabled"] = draw(st.booleans())
    return {"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout", "metadata": {}, "spec": spec}


@st.composite
def realistic_v1beta1(draw: st.DrawFn) -> Obj:
    """What a user writes for an nginx or MSE canary: growing replicas and traffic, pauses, a match."""
    count = draw(st.integers(1, 3))
    percents = sorted(draw(st.lists(st.integers(1, 100), min_size=count, max_size=count)))
    steps: list[Obj] = []
    for index, percent in enumerate(percents):
        step: Obj = {"replicas": f"{percent}%", "traffic": f"{percent}%"}
        if index == 0 and draw(st.booleans()):
            step["matches"] = [{"headers": [{"name": "x-canary", "value": "yes"}]}]
        step["pause"] = draw(st.one_of(st.just({}), st.fixed_dictionaries({"duration": st.integers(0, 2)})))
        steps.append(step)
    routing = {
        "service": "web",
        "ingress": {"name": "web", "classType": draw(st.sampled_from(["nginx", "mse"]))},
        "gracePeriodSeconds": draw(st.integers(0, 1)),
    }
    canary = {
        "steps": steps,
        "trafficRoutings": [routing],
        "enableExtraWorkloadForCanary": draw(st.booleans()),
    }
    return {
        "apiVersion": "rollouts.kruise.io/v1beta1",
        "kind": "Rollout",
        "metadata": {},
        "spec": {"workloadRef": dict(_GOOD_WORKLOAD), "strategy": {"canary": canary}},
    }


@st.composite
def valid_ish_v1alpha1(draw: st.DrawFn) -> Obj:
    canary = draw(
        st.fixed_dictionaries(
            {"steps": ALPHA_STEPS}, optional={"trafficRoutings": st.lists(ROUTING, max_size=2)}
        )
    )
    annotations = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "rollouts.kruise.io/rolling-style": st.sampled_from(
                    ["canary", "Partition", "partition", "bluegreen"]
                )
            },
        )
    )
    spec: Obj = {"objectRef": {"workloadRef": draw(WORKLOADS)}, "strategy": {"canary": canary}}
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"annotations": annotations} if annotations else {},
        "spec": spec,
    }


@st.composite
def valid_ish_traffic_routing(draw: st.DrawFn) -> Obj:
    strategy = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "matches": st.lists(MATCH, max_size=2),
                "weight": st.integers(-5, 120),
                "requestHeaderModifier": HEADER_MODIFIER,
            },
        )
    )
    return {
        "apiVersion": "rollouts.kruise.io/v1alpha1",
        "kind": "TrafficRouting",
        "metadata": {},
        "spec": {"objectRef": draw(st.lists(ROUTING, max_size=2)), "strategy": strategy},
    }


def _nested(depth: int) -> Obj:
    node: Obj = {"leaf": "x"}
    for _ in range(depth):
        node = {"n": node}
    return node


WRONG_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=16),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({}),
    st.just(["a", 1, None]),
    st.just("💥" * 40),
    st.just("nul\u0000byte"),
    st.just(_nested(40)),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path below the top (metadata is left alone: names and namespaces are the fuzzer's)."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        path = (*prefix, key)
        if path[0] in ("apiVersion", "kind", "metadata"):
            continue
        found.append(path)
        found.extend(_paths(item, path))
    return found


@st.composite
def hostile(draw: st.DrawFn, base: st.SearchStrategy[Obj]) -> Obj:
    obj = copy.deepcopy(draw(base))
    # Deepest first: hypothesis leans to early choices, and breaking a leaf exercises more rules than
    # replacing the whole spec (which the schema refuses at once).
    paths = sorted(_paths(obj), key=len, reverse=True)
    if not paths:
        return obj
    *parents, last = draw(st.sampled_from(paths))
    node: Any = obj
    for key in parents:
        node = node[key]
    if draw(st.booleans()) and isinstance(node, dict):
        del node[last]
    else:
        node[last] = draw(WRONG_VALUES)
    return obj


def rollouts() -> st.SearchStrategy[Obj]:
    valid = st.one_of(valid_ish_v1beta1(), valid_ish_v1alpha1(), realistic_v1beta1())
    return st.one_of(valid, valid, valid, hostile(valid))


def traffic_routings() -> st.SearchStrategy[Obj]:
    valid = valid_ish_traffic_routing()
    return st.one_of(valid, valid, hostile(valid))
