"""Traffic tier: real HTTP requests through real gateways, in a network namespace of the session's own.

One `TrafficLab` per session (graylane.trafficlab.lab): a network namespace `gl-traffic-<pid>` holding
a local cluster, `graylane controller`, Traefik (Gateway API + ingress-nginx), Contour + Envoy and
the fake app; the tests' HTTP client and Kubernetes client run on a thread inside it. Tests are plain
functions that run their scenario with `lab.run(...)`. The tier never skips: without root, or if a
gateway cannot be built, the session fails and says why. Teardown stops every process by pid and
deletes the cluster and the namespace, after a failure too.

Figures (requests, shares, zero-loss counts, step-to-traffic latency) are printed at the end of the
run and written as JSON to $GRAYLANE_TRAFFIC_FIGURES when that is set.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.traffic.figures import Figures

from graylane.kube import resources as r
from graylane.trafficlab.lab import TrafficLab

# The first test also waits for the session's lab (and builds the gateways if they are missing, ~10 min
# on 2 cores): more than the suite's 600 s default.
TIMEOUT_SECONDS = 2400


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/traffic" in str(item.fspath):
            item.add_marker(pytest.mark.traffic)
            item.add_marker(pytest.mark.timeout(TIMEOUT_SECONDS))


_FIGURES = Figures()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES.lines:
        return
    terminalreporter.section("traffic figures (requests through real gateways)")
    for line in _FIGURES.lines:
        terminalreporter.write_line(line)
    target = os.environ.get("GRAYLANE_TRAFFIC_FIGURES")
    if target:
        Path(target).write_text(json.dumps(_FIGURES.records, indent=2) + "\n")


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrafficLab]:
    the_lab = TrafficLab("traffic", tmp_path_factory.mktemp("traffic-lab"), out=lambda _line: None)
    try:
        the_lab.start()  # stops what it started if it fails half-way
    except Exception as err:  # the tier must fail loudly, never skip
        pytest.fail(f"the traffic lab could not start: {err}", pytrace=False)
    try:
        yield the_lab
    finally:
        the_lab.stop()


@pytest.fixture
def namespace(lab: TrafficLab) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    assert lab.kube is not None
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    lab.run(lab.kube.create(r.NAMESPACE, body), 60)
    try:
        yield name
    finally:
        dead = lab.dead_children()
        lab.run(lab.kube.delete(r.NAMESPACE, name), 60)
        assert not dead, f"a lab process died during the test: {dead}"
