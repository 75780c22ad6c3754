"""The fake app's contract for analysis (graylane.trafficlab.app): an error rate and a latency set on the
pod template travel with the version released, and /metrics counts answers per version, pod and code,
with zero series from the moment a pod is seen."""

from __future__ import annotations

import re

import aiohttp
from tests.integration.builders import deployment
from tests.integration.release_dsl import Release
from tests.traffic.apps import V1, V2, rollout, route_host, service
from tests.traffic.apps import http_route as route
from tests.traffic.figures import Figures
from tests.traffic.probes import route_doors, some, until_traffic

from graylane.kube import resources as r
from graylane.trafficlab.lab import APP_METRICS_PORT, TrafficLab

TEST = "fake app"
PREFIX = "trafficlab.graylane.io/"


def test_error_rate_and_metrics_follow_the_released_version(
    lab: TrafficLab, namespace: str, figures: Figures
) -> None:
    lab.run(_scenario(lab, namespace, figures), timeout=900)


async def _metrics() -> dict[tuple[str, str], float]:
    """(version, code) -> answers, summed over pods, from the app's /metrics inside the namespace."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{APP_METRICS_PORT}/metrics") as resp,
    ):
        text = await resp.text()
    totals: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = re.match(r"http_requests_total\{(.*)\} (\S+)$", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            key = (labels["version"], labels["code"])
            totals[key] = totals.get(key, 0.0) + float(match.group(2))
    return totals


async def _scenario(lab: TrafficLab, namespace: str, figures: Figures) -> None:
    assert lab.kube is not None
    kube = lab.kube
    app = deployment("demo", namespace, replicas=2, image=V1)
    await kube.create(r.DEPLOYMENT, app)
    await kube.create(r.SERVICE, service(namespace))
    await kube.create(r.HTTPROUTE, route(namespace))
    rel = Release(kube, namespace)
    await rel.then_pods({V1: 2}, what="2 v1 pods")
    await rel.given_rollout(
        rollout([{"traffic": "50%", "replicas": 1, "pause": {}}], {"gateway": {"httpRouteName": "demo"}})
    )
    door = route_doors(route_host(namespace))[0]  # Traefik: deterministic, so the counts are exact

    # v2 returns 10% 500s and answers 20 ms late: set on the template with the image, as a user would.
    patch = {
        "spec": {
            "template": {
                "metadata": {"annotations": {PREFIX + "error-rate": "0.1", PREFIX + "latency-ms": "20"}},
                "spec": {"containers": [{"name": "main", "image": V2}]},
            }
        }
    }
    await kube.patch(r.DEPLOYMENT, "demo", patch, namespace, patch_type="strategic")
    await rel.then_paused_at(1)
    await until_traffic(door, some(V2), what="50% on v2", timeout=60)
    before = await _metrics()
    assert ("v2", "500") in before, "a zero 500 series exists for v2 before it fails"
    tally = await door.send(400)
    after = await _metrics()
    counts = tally.count()
    served = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert counts == {"HTTP 500": 20, V1: 200, V2: 180}, counts  # every 10th v2 answer fails
    assert served[("v2", "500")] == 20
    assert served[("v2", "200")] == 180
    assert served[("v1", "200")] == 200
    assert served.get(("v1", "500"), 0) == 0
    figures.add(TEST, f"v2 with error-rate 0.1: {tally.describe()}; /metrics agrees: {served}")
