"""A fake application that answers as every pod of the cluster: the dialled IP names the pod.

Run it inside the traffic network namespace (`python -m graylane.trafficlab.app --kubeconfig K`). It
listens on 0.0.0.0:PORT for each --port (the Services' targetPorts; 8080 by default) and, for each
connection, takes `getsockname()` (the pod IP the gateway dialled) to the pod that has it, from a pod
watch. A terminating pod still answers until it is gone, as a container does in its grace period.

The contract (tests, the demo and the analysis engine rely on it; keep it stable):

Answer (any path, any method): HTTP 200 with JSON
    {"pod", "namespace", "image", "version", "labels", "headers", "upstream"?}
where `version` is the image's tag (`demo:v2` -> "v2"), `headers` the request headers as received
(so a gateway's header rewrite is visible) and `upstream` the answer of the next hop, if any.
HTTP 503 {"error": ...} when no pod has the dialled IP (after one fresh lookup, to cover a watch that
lags behind the gateway). TCP_NODELAY is set: http.server-style split writes would otherwise cost a
delayed ACK (~40 ms) per keep-alive request.

Pod-template annotations (they travel with the release that changes the image, so "v2 returns 10%
500s" is set by the version released):
    trafficlab.graylane.io/error-rate   "0.1": that share of the pod's answers are HTTP 500, evenly
                                        spread (deterministic: every 10th at 0.1), JSON as above;
    trafficlab.graylane.io/latency-ms   "50": each answer waits that long first;
    trafficlab.graylane.io/upstream     "spring-cloud-b": the pod calls that Service (same namespace)
                                        and nests its answer, as service A calling service B.

End-to-end lanes (A -> B), the way an MSE / OpenSergo agent behaves: the lane header (`x-mse-tag`, or
the pod annotation trafficlab.graylane.io/lane-header) is forwarded; a gray pod, one labelled
`opensergo.io/canary-gray` or `alicloud.service.tag`, adds its tag to its outgoing call when the
request had none; B's instance is chosen among B's pods carrying that tag when the call has a tag and
B has such pods, else among B's pods without a gray label (round robin, client-side, no kube-proxy).

Metrics (Prometheus text on --metrics-port, path /metrics, 127.0.0.1 of the namespace):
    http_requests_total{namespace,service,version,pod,code}  zero for codes 200 and 500 from the moment
                                                            a pod is seen (an error-ratio query has
                                                            a series for a version that never failed)
    http_request_duration_seconds{namespace,service,version}  histogram of answer latency
where `service` is the pod's `app` label (else `app.kubernetes.io/name`, else its namespace).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import socket
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from graylane.kube import resources as r
from graylane.kube.client import KubeClient, Obj
from graylane.kube.informer import EventType, Informer

__all__ = ["FakeApp", "Pod", "choose_upstream", "fails", "main", "version_of"]

log = logging.getLogger(__name__)

PREFIX = "trafficlab.graylane.io/"
ERROR_RATE = PREFIX + "error-rate"
LATENCY_MS = PREFIX + "latency-ms"
UPSTREAM = PREFIX + "upstream"
LANE_HEADER = PREFIX + "lane-header"
DEFAULT_LANE_HEADER = "x-mse-tag"
GRAY_LABELS = ("opensergo.io/canary-gray", "alicloud.service.tag")
CODES = ("200", "500")
IP_INDEX = "podIP"


def version_of(image: str) -> str:
    """The image's tag (`registry/x/version:v1` -> "v1"); "latest" when it has none."""
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "latest"


class Pod:
    """What the app needs of a pod object."""

    def __init__(self, obj: Obj) -> None:
        meta = obj.get("metadata", {})
        spec = obj.get("spec", {})
        self.name: str = meta.get("name", "")
        self.namespace: str = meta.get("namespace", "")
        self.uid: str = meta.get("uid", "")
        self.labels: dict[str, str] = dict(meta.get("labels") or {})
        self.annotations: dict[str, str] = dict(meta.get("annotations") or {})
        containers = spec.get("containers") or [{}]
        self.image: str = containers[0].get("image", "")
        self.version = version_of(self.image)
        self.ip: str = (obj.get("status") or {}).get("podIP", "")
        conditions = (obj.get("status") or {}).get("conditions") or []
        self.ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        self.terminating = bool(meta.get("deletionTimestamp"))

    @property
    def service(self) -> str:
        return self.labels.get("app") or self.labels.get("app.kubernetes.io/name") or self.namespace

    @property
    def gray_tag(self) -> str | None:
        return next((self.labels[k] for k in GRAY_LABELS if self.labels.get(k)), None)

    def number(self, key: str) -> float:
        try:
            return max(0.0, float(self.annotations.get(key, "0")))
        except ValueError:
            return 0.0

    def answer(self, headers: Mapping[str, str]) -> dict[str, Any]:
        return {
            "pod": self.name,
            "namespace": self.namespace,
            "image": self.image,
            "version": self.version,
            "labels": self.labels,
            "headers": dict(headers),
        }


def fails(n: int, rate: float) -> bool:
    """Whether the pod's n-th answer (from 0) is an error at `rate`: errors evenly spread, so any
    window of answers holds its share (every 10th at 0.1), and a test can count on the figure."""
    rate = min(1.0, max(0.0, rate))
    return math.floor((n + 1) * rate) > math.floor(n * rate)


def choose_upstream(candidates: list[Pod], tag: str | None, turn: int) -> Pod | None:
    """B's instance for a call: one with the lane's tag if the call has one and B has such pods, else
    one without a gray label; round robin by `turn`. None when B has no usable pod."""
    usable = [p for p in candidates if p.ip and p.ready and not p.terminating]
    tagged = [p for p in usable if tag is not None and p.gray_tag == tag]
    pool = tagged or [p for p in usable if p.gray_tag is None]
    if not pool:
        return None
    pool.sort(key=lambda p: p.name)
    return pool[turn % len(pool)]


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class Metrics:
    """One registry per app (no module-level state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("namespace", "service", "version", "pod", "code")
        self.requests = Counter(
            "http_requests_total", "Answers by pod and code", labels, registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Answer latency per version",
            ("namespace", "service", "version"),
            registry=self.registry,
        )

    def seen(self, pod: Pod) -> None:
        for code in CODES:
            self.requests.labels(pod.namespace, pod.service, pod.version, pod.name, code)
        self.latency.labels(pod.namespace, pod.service, pod.version)

    def answered(self, pod: Pod, code: int, seconds: float) -> None:
        self.requests.labels(pod.namespace, pod.service, pod.version, pod.name, str(code)).inc()
        self.latency.labels(pod.namespace, pod.service, pod.version).observe(seconds)


def _pod_ips(obj: Obj) -> list[str]:
    ip = (obj.get("status") or {}).get("podIP")
    return [ip] if ip else []


class FakeApp:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.pods = Informer(kube, r.POD)
        self.pods.add_index(IP_INDEX, _pod_ips)
        self.services = Informer(kube, r.SERVICE)
        self.metrics = Metrics()
        self.pods.on_event(self._on_pod)
        self._served: dict[str, int] = {}  # pod uid -> answers, for the error-rate spread
        self._turns = itertools.count()
        self._session: aiohttp.ClientSession | None = None

    def _on_pod(self, kind: EventType, _old: Obj | None, new: Obj | None) -> None:
        if kind is not EventType.DELETED and new is not None:
            self.metrics.seen(Pod(new))

    async def lookup(self, ip: str) -> Pod | None:
        """The live pod with this IP; one fresh LIST when the watch has not seen it yet."""
        found = [Pod(o) for o in self.pods.by_index(IP_INDEX, ip)]
        if not found:
            with contextlib.suppress(Exception):
                listed = await asyncio.wait_for(
                    self.kube.list(r.POD, field_selector=f"status.podIP={ip}"), timeout=2
                )
                found = [Pod(o) for o in listed.get("items", [])]
                for pod in found:
                    self.metrics.seen(pod)
        found = [p for p in found if p.ip == ip]
        # An IP freed by a deleted pod may already belong to a new one: the newest claim wins.
        live = [p for p in found if not p.terminating] or found
        return live[0] if live else None

    def upstream(self, pod: Pod, service_name: str) -> tuple[list[Pod], int]:
        """The pods a Service selects and the port to dial them on (its first port's targetPort)."""
        spec = (self.services.get(pod.namespace, service_name) or {}).get("spec") or {}
        selector = spec.get("selector") or {}
        first = (spec.get("ports") or [{}])[0]
        target = first.get("targetPort", first.get("port", 8080))
        port = target if isinstance(target, int) else 8080  # named ports: the app answers on 8080
        return [Pod(o) for o in self.pods.list(pod.namespace) if matches(selector, Pod(o).labels)], port

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        ip = sockname[0] if sockname else ""
        pod = await self.lookup(ip)
        if pod is None:
            return web.json_response({"error": f"no pod has IP {ip}"}, status=503)
        latency = pod.number(LATENCY_MS)
        if latency:
            await asyncio.sleep(latency / 1000)
        body = pod.answer(request.headers)
        status = 500 if self._fails(pod) else 200
        upstream = pod.annotations.get(UPSTREAM)
        if upstream and status == 200:
            body["upstream"], status = await self.call_upstream(pod, upstream, request)
        self.metrics.answered(pod, status, time.monotonic() - started)
        return web.json_response(body, status=status)

    def _fails(self, pod: Pod) -> bool:
        n = self._served.get(pod.uid, 0)
        self._served[pod.uid] = n + 1
        return fails(n, pod.number(ERROR_RATE))

    async def call_upstream(self, pod: Pod, service: str, request: web.Request) -> tuple[Any, int]:
        header = pod.annotations.get(LANE_HEADER, DEFAULT_LANE_HEADER)
        tag = request.headers.get(header) or pod.gray_tag
        candidates, port = self.upstream(pod, service)
        target = choose_upstream(candidates, tag, next(self._turns))
        if target is None:
            return {"error": f"service {service} has no ready pod"}, 502
        headers = {header: tag} if tag else {}
        assert self._session is not None
        try:
            async with self._session.get(
                f"http://{target.ip}:{port}{request.rel_url}", headers=headers
            ) as resp:
                return await resp.json(), 200 if resp.status == 200 else 502
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            return {"error": f"calling {service} at {target.ip}: {err}"}, 502

    async def metrics_page(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def serve(self, ports: list[int], metrics_port: int) -> None:
        tasks = [asyncio.create_task(i.run()) for i in (self.pods, self.services)]
        await asyncio.wait_for(
            asyncio.gather(self.pods.has_synced.wait(), self.services.has_synced.wait()), 60
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        metrics = web.Application()
        metrics.router.add_get("/metrics", self.metrics_page)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as self._session:
            runners = [web.AppRunner(app, access_log=None), web.AppRunner(metrics, access_log=None)]
            for runner in runners:
                await runner.setup()
            for port in ports:
                await web.SockSite(runners[0], listener(port)).start()
            await web.TCPSite(runners[1], "127.0.0.1", metrics_port).start()
            print(json.dumps({"ready": True, "ports": ports, "metrics_port": metrics_port}), flush=True)
            try:
                await asyncio.gather(*tasks)
            finally:
                for runner in runners:
                    await runner.cleanup()


def listener(port: int) -> socket.socket:
    """0.0.0.0:port (only ever run inside our namespace), TCP_NODELAY inherited by accepted sockets."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _run(args: argparse.Namespace) -> None:
    async with KubeClient.from_kubeconfig(args.kubeconfig, agent="graylane-trafficlab") as kube:
        await FakeApp(kube).serve(args.port or [8080], args.metrics_port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graylane.trafficlab.app", description="fake app")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, action="append", help="a targetPort to answer on (repeat)")
    parser.add_argument("--metrics-port", type=int, default=9100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
