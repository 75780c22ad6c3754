"""The HTTP client of the traffic tier: bounded batches and a bounded background stream of requests.

It only ever sends to 127.0.0.1 of the namespace it runs in (a gateway's entryPoint): run it on the
lab's `NetnsLoop`. Every loop is bounded in count and in time. Requests are sent one after another
on a keep-alive connection, so a deterministic balancer (Traefik's weighted round robin) gives
exact shares.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

__all__ = ["Answer", "Stream", "Tally", "answer_version", "lane_versions", "send"]

MAX_REQUESTS = 20_000
LOOPBACK = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer arrived
    status: int
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def answer_version(answer: Answer) -> str:
    """The image of the pod that answered without its registry path (`demo:v2`, `version:v1` for
    `registry.example/x/version:v1`), or `HTTP <code>` for an error answer."""
    if not answer.ok:
        return f"HTTP {answer.status}"
    return str(answer.body.get("image") or "?").rsplit("/", 1)[-1]


def lane_versions(answer: Answer) -> str:
    """Hop by hop: `a-pod-image -> b-pod-image` with each hop's gray label, for lane checks."""
    hops, body = [], answer.body
    while isinstance(body, Mapping) and body.get("pod"):
        gray = (body.get("labels") or {}).get("opensergo.io/canary-gray")
        hops.append(f"{body.get('image')}{' (gray)' if gray else ''}")
        body = body.get("upstream") or {}
    return " -> ".join(hops) if answer.ok else f"HTTP {answer.status}"


@dataclasses.dataclass
class Tally:
    answers: list[Answer] = dataclasses.field(default_factory=list)

    def count(self, key: Callable[[Answer], str] = answer_version) -> dict[str, int]:
        return dict(sorted(collections.Counter(key(a) for a in self.answers).items()))

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def __len__(self) -> int:
        return len(self.answers)

    def describe(self, key: Callable[[Answer], str] = answer_version) -> str:
        counts = self.count(key)
        return f"{len(self):,} requests: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())


async def _one(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], cookies: Mapping[str, str]
) -> Answer:
    try:
        async with session.get(url, headers=dict(headers), cookies=dict(cookies)) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = {"text": (await resp.text())[:200]}
            return Answer(time.monotonic(), resp.status, body if isinstance(body, dict) else {})
    except (aiohttp.ClientError, TimeoutError) as err:
        return Answer(time.monotonic(), 0, {"error": f"{type(err).__name__}: {err}"})


def _url(port: int, path: str, address: str = LOOPBACK) -> str:
    return f"http://{address}:{port}{path}"


async def send(
    port: int,
    n: int,
    *,
    path: str = "/",
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    timeout: float = 120,
    address: str = LOOPBACK,
    check_route: Callable[[str], None] | None = None,
) -> Tally:
    """`n` requests one after another (at most MAX_REQUESTS, stopping at `timeout` seconds) to
    127.0.0.1, or to `address` once `check_route(address)` (the namespace's route check) has passed."""
    if not 0 < n <= MAX_REQUESTS:
        raise ValueError(f"n={n}: between 1 and {MAX_REQUESTS} requests")
    if address != LOOPBACK:
        if check_route is None:
            raise ValueError(f"{address}: requests to a pod IP need the namespace's route check")
        check_route(address)
    tally = Tally()
    deadline = time.monotonic() + timeout
    client_timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=client_timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            tally.answers.append(await _one(session, _url(port, path, address), headers or {}, cookies or {}))
    return tally


class Stream:
    """A steady background stream (one request every `interval` s) until stopped, bounded in count and
    time; answers are kept with their arrival time so a test can tell which step they belong to."""

    def __init__(
        self,
        port: int,
        *,
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        interval: float = 0.02,
        max_requests: int = MAX_REQUESTS,
        max_seconds: float = 900,
    ) -> None:
        self.url = _url(port, path)
        self.headers = dict(headers or {})
        self.interval = interval
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.tally = Tally()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
            while not self._stop.is_set() and len(self.tally) < self.max_requests:
                if time.monotonic() > deadline:
                    break
                self.tally.answers.append(await _one(session, self.url, self.headers, {}))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)

    async def stop(self) -> Tally:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.tally
