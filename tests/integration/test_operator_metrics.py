"""Operator signals on the real cluster: per-Rollout series, durations, user-action Events naming who,
process and runtime metrics, and a Grafana dashboard whose every query names a series graylane exports."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from graylane.cli.main import cli
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.kube.events import CORE_EVENT
from graylane.telemetry.metrics import SERIES
from tests.integration.controller_fixtures import ControllerProcess
from tests.integration.release_dsl import V1, V2, Release
from tests.integration.traffic_fixtures import (
    canary_rollout,
    controller_sees_gateway_api,
    gateway_api_crds,
    ingress,
    service,
    traffic_controller,
)
from tests.integration.waiting import eventually

__all__ = ["controller_sees_gateway_api", "gateway_api_crds", "traffic_controller"]  # fixtures
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "graylane-dashboard.json"
PROMQL_WORDS = frozenset(
    {
        "sum",
        "by",
        "without",
        "rate",
        "increase",
        "histogram_quantile",
        "max",
        "min",
        "avg",
        "count",
        "le",
        "on",
    }
)


def scrape(proc: ControllerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics; each family also appears once as (family name, ()) with value nan, so a
    histogram or a counter with no sample yet still counts as exported."""
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.health_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        names = [family.name] + ([f"{family.name}_total"] if family.type == "counter" else [])
        samples.update({(n, ()): float("nan") for n in names})
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], series: str, **labels: str
) -> float | None:
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == series and want <= set(ls)]
    return sum(found) if found else None


def metric_names(expr: str) -> set[str]:
    """The series an expression reads: identifiers left once label sets, ranges and grouping are removed."""
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|without|on)\s*\([^)]*\)", " ", expr)
    return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w not in PROMQL_WORDS}


async def cli_ok(kubeconfig: Path, namespace: str, *args: str) -> str:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args, "--kubeconfig", str(kubeconfig), "-n", namespace]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


async def events(kube: KubeClient, namespace: str) -> dict[str, str]:
    listed = await kube.list(CORE_EVENT, namespace, field_selector="involvedObject.kind=Rollout")
    return {e["reason"]: e["message"] for e in listed["items"]}


async def test_rollout_series_user_action_events_and_the_dashboard(
    kube: KubeClient, namespace: str, kubeconfig: Path, traffic_controller: ControllerProcess
) -> None:
    rel = Release(kube, namespace)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.INGRESS, ingress(namespace))
    await rel.given_deployment(replicas=4)
    steps = [{"replicas": 1, "traffic": "20%", "pause": {}}, {"replicas": "100%", "traffic": "100%"}]
    await rel.given_rollout(canary_rollout({"ingress": {"name": "web"}}, steps))
    await rel.when_image(V2)
    await rel.then_paused_at(1)
    await rel.then_pods({V1: 4, V2: 1}, what="step 1")

    seen = await eventually(
        lambda: asyncio.to_thread(scrape, traffic_controller),
        lambda s: value(s, "graylane_rollout_traffic_weight", namespace=namespace, name="demo") == 20,
        what="the traffic weight read back from the canary Ingress",
    )
    info = {
        "namespace": namespace,
        "name": "demo",
        "phase": "Progressing",
        "step": "1",
        "state": "StepPaused",
    }
    assert value(seen, "graylane_rollout_info", **info, strategy="canary") == 1

    await cli_ok(kubeconfig, namespace, "pause", "demo")
    await cli_ok(kubeconfig, namespace, "resume", "demo")
    await cli_ok(kubeconfig, namespace, "approve", "demo")
    await rel.then_completed()
    said = await eventually(
        lambda: events(kube, namespace),
        lambda e: {"RolloutPaused", "RolloutResumed", "RolloutApproved"} <= set(e),
        what="user-action Events",
    )
    for reason in ("RolloutPaused", "RolloutResumed"):
        assert " by graylane-cli:" in said[reason], said  # who: the user the API server authenticated
    assert said["RolloutApproved"].startswith("step 1 approved"), said

    done = await eventually(
        lambda: asyncio.to_thread(scrape, traffic_controller),
        lambda s: bool(value(s, "graylane_rollout_release_duration_seconds_count", namespace=namespace)),
        what="the release's duration observed",
    )
    assert (
        value(
            done, "graylane_rollout_release_duration_seconds_count", namespace=namespace, result="succeeded"
        )
        == 1
    )
    assert (value(done, "graylane_rollout_step_duration_seconds_count", namespace=namespace) or 0) >= 2
    assert value(done, "graylane_rollout_user_actions_total", namespace=namespace, verb="Approved") == 1
    assert (
        value(
            done,
            "process_cpu_seconds_total",
        )
        or 0
    ) > 0
    assert (value(done, "process_resident_memory_bytes") or 0) > 0
    assert value(done, "python_info", implementation="CPython") == 1

    exported = {name for name, _ in done}
    assert exported >= SERIES, SERIES - exported
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name for panel in dashboard["panels"] for t in panel["targets"] for name in metric_names(t["expr"])
    }
    assert queried, "the dashboard has queries"
    assert queried <= exported, f"panels query series graylane does not export: {sorted(queried - exported)}"


def test_the_expression_parser_finds_the_series() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, ns) (rate(graylane_x_bucket{a="b"}[5m]))) + max(y_total)'
    assert metric_names(expr) == {"graylane_x_bucket", "y_total"}
    with pytest.raises(AssertionError):
        assert metric_names("sum(not_exported)") <= {"graylane_x_bucket"}
