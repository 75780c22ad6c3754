"""The demo's traffic: requests through Traefik (its ingress-nginx provider and its Gateway), counted by
the image that answered, one line per step. Runs on the traffic lab's loop, inside its namespace.

Without root the demo cannot create the namespace the pod IPs live in; it then says why and shows
what graylane wrote into the gateways instead (`unavailable_reason`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from graylane.trafficlab import gateways as gw
from graylane.trafficlab.client import Tally, send

__all__ = ["DemoTraffic", "unavailable_reason"]

HOST = "demo.local"
WEIGHT_REQUESTS = 1_000
MATCH_REQUESTS = 100


def unavailable_reason() -> str | None:
    """Why the demo cannot send real requests here, or None when it can."""
    if os.geteuid() != 0:
        return (
            "requests are not sent: the pods' IPs live in a network namespace of the demo's own, and "
            "creating one needs root (run `sudo make demo` to see real traffic)"
        )
    return None


class DemoTraffic:
    """`await traffic.weights()` / `await traffic.header(name, value)`: one line of counts each."""

    doors = (("Traefik ingress-nginx", gw.NGINX_PORT), ("Traefik HTTPRoute", gw.GATEWAY_PORT))

    async def _send(self, port: int, n: int, headers: dict[str, str] | None = None) -> Tally:
        return await send(port, n, headers={"Host": HOST, **(headers or {})})

    async def settle(
        self, port: int, shown: Callable[[dict[str, int]], bool], headers: dict[str, str] | None = None
    ) -> None:
        """Until a small batch shows the step (the gateway applies what graylane wrote within about a
        second), at most 30 s; then the counts are taken."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if shown((await self._send(port, 10, headers)).count()):
                return
            await asyncio.sleep(0.1)

    async def weights(self, shown: Callable[[dict[str, int]], bool], n: int = WEIGHT_REQUESTS) -> str:
        parts = []
        for name, port in self.doors:
            await self.settle(port, shown)
            parts.append(f"{name} {(await self._send(port, n)).describe()}")
        return "; ".join(parts)

    async def header(self, name: str, value: str, image: str, n: int = MATCH_REQUESTS) -> str:
        parts = []
        for door, port in self.doors:
            await self.settle(port, lambda counts: set(counts) == {image}, {name: value})
            hit = await self._send(port, n, {name: value})
            miss = await self._send(port, n)
            parts.append(f"{door} {name}: {value} -> {_share(hit)}, without it -> {_share(miss)}")
        return "; ".join(parts)


def _share(tally: Tally) -> str:
    """`demo:v2 100/100`, or every image's count when answers were mixed."""
    counts = tally.count()
    if len(counts) == 1:
        ((image, count),) = counts.items()
        return f"{image} {count}/{len(tally)}"
    return ", ".join(f"{image} {count}" for image, count in counts.items()) + f" of {len(tally)}"
