"""A real Prometheus (Debian's 2.42.0, fetched by graylane.cluster.prometheus) scraping a tiny exporter.

Everything listens on 127.0.0.1 with free ports. The exporter plays two versions of an app: counters
``http_requests_total{version, code}`` that a background thread advances at a steady rate (version
"v2" can be given an error share), exported as zero for every code from the start so error queries
always have series, and a gauge ``request_latency_seconds{version}`` with a new log-normal value per
scrape. Every process and thread is stopped in the fixture's teardown, by pid.
"""

from __future__ import annotations

import math
import random
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from graylane.cluster.prometheus import fetch_prometheus

SCRAPE_INTERVAL = "1s"
READY_DEADLINE = 60.0  # seconds; generous for a loaded machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class FakeApp:
    """Per-version request counters and a latency gauge, served as Prometheus text on /metrics."""

    rate: float = 200.0  # requests per second per version
    error_share: dict[str, float] = field(default_factory=lambda: {"v1": 0.0, "v2": 0.0})
    latency_median: dict[str, float] = field(default_factory=lambda: {"v1": 0.1, "v2": 0.1})
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for version in self.error_share:
            for code in ("200", "500"):
                self.counts[(version, code)] = 0

    def advance(self, seconds: float) -> None:
        with self.lock:
            for version, share in self.error_share.items():
                requests = round(self.rate * seconds)
                errors = round(requests * share)
                self.counts[(version, "500")] += errors
                self.counts[(version, "200")] += requests - errors

    def run(self) -> None:
        """Advance the counters every 50 ms until stopped (the clock here is only the traffic's pace)."""
        last = time.monotonic()
        while not self.stop.wait(0.05):
            now = time.monotonic()
            self.advance(now - last)
            last = now

    def render(self) -> str:
        lines = ["# TYPE http_requests_total counter"]
        with self.lock:
            for (version, code), value in sorted(self.counts.items()):
                lines.append(f'http_requests_total{{version="{version}",code="{code}"}} {value}')
            lines.append("# TYPE request_latency_seconds gauge")
            for version, median in sorted(self.latency_median.items()):
                value = median * math.exp(0.2 * self.rng.gauss(0.0, 1.0))
                lines.append(f'request_latency_seconds{{version="{version}"}} {value:.6f}')
        return "\n".join(lines) + "\n"


def _handler(app: FakeApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self._send(503, "text/plain", "not a Prometheus server")
                return
            self._send(200, "text/plain; version=0.0.4", app.render())

        def do_POST(self) -> None:
            self._send(503, "text/plain", "not a Prometheus server")

        def _send(self, status: int, kind: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            return

    return Handler


@dataclass
class Exporter:
    app: FakeApp
    server: ThreadingHTTPServer
    threads: list[threading.Thread]

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.app.stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)


def start_exporter(app: FakeApp) -> Exporter:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(app))
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=app.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    return Exporter(app, server, threads)


@dataclass
class Prometheus:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def _wait(what: str, check: object, prometheus: Prometheus) -> None:
    assert callable(check)
    deadline = time.monotonic() + READY_DEADLINE
    while time.monotonic() < deadline:
        if prometheus.process.poll() is not None:
            raise RuntimeError(
                f"Prometheus exited ({prometheus.process.returncode}): {prometheus.log.read_text()[-2000:]}"
            )
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(
        f"Prometheus: {what} not within {READY_DEADLINE:.0f} s; log: {prometheus.log.read_text()[-2000:]}"
    )


def start_prometheus(workdir: Path, target: str, history: int = 0) -> Prometheus:
    """Prometheus on 127.0.0.1 scraping ``target`` every second; returns once the target is up and at
    least ``history`` scrapes are stored (queries over the last seconds then have data)."""
    binary = fetch_prometheus(out=lambda _line: None)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  evaluation_interval: {SCRAPE_INTERVAL}\n"
        f"scrape_configs:\n  - job_name: fake\n    static_configs:\n      - targets: ['{target.removeprefix('http://')}']\n"
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(process, port, log)
    try:
        _wait("ready", lambda: "Ready" in _get(f"{prometheus.address}/-/ready"), prometheus)
        scrapes = max(history, 1)
        query = urllib.request.quote(f'count_over_time(up{{job="fake"}}[{scrapes + 30}s]) >= {scrapes}')
        _wait(
            f"{scrapes} scrapes of the target",
            lambda: '"value"' in _get(f"{prometheus.address}/api/v1/query?query={query}"),
            prometheus,
        )
    except BaseException:
        prometheus.stop()
        raise
    return prometheus


def running(workdir: Path, app: FakeApp, history: int = 0) -> Iterator[tuple[Prometheus, Exporter]]:
    """Generator for a fixture: the exporter and a Prometheus scraping it, both stopped afterwards."""
    exporter = start_exporter(app)
    try:
        prometheus = start_prometheus(workdir, exporter.address, history)
        try:
            yield prometheus, exporter
        finally:
            prometheus.stop()
    finally:
        exporter.close()
