"""A real Prometheus inside the traffic lab's namespace, scraping what analysis reads.

Debian's Prometheus 2.42.0 (graylane.cluster.prometheus fetches it into the cache) on 127.0.0.1 of the
namespace, every second, from three targets:
- the fake app (`APP_METRICS_PORT`): `http_requests_total{namespace,service,version,pod,code}` and
  `http_request_duration_seconds` per version (trafficlab/app.py);
- Traefik (`/metrics` on its ping entryPoint): `traefik_service_requests_total{service,code,...}`, one
  series per backend the gateway sent requests to. The service label names the backend:
  `<ns>-<ingress>-<svc>-<port>@kubernetesingressnginx` (the canary Service behind the nginx canary
  annotations: the same with `-canary` after the port) and, for an HTTPRoute,
  `httproute-<ns>-<route>-gw-<gwns>-<gw>-ep-<entrypoint>-<rule>-<hash>-svc-<ns>-<svc>-<i>@kubernetesgateway`;
- Envoy (Contour's stats listener, `/stats/prometheus`):
  `envoy_cluster_upstream_rq_total{envoy_cluster_name="<ns>_<svc>_<port>"}` per upstream cluster.
Started and stopped by the lab (`TrafficLab.start_prometheus`), by pid like every process there.

What it must not do: start anything itself, or listen outside the namespace's 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from graylane.trafficlab import gateways as gw

__all__ = ["PROMETHEUS_PORT", "prometheus_argv"]

PROMETHEUS_PORT = 9090


def _config(app_metrics_port: int) -> dict[str, object]:
    def job(name: str, port: int, path: str = "/metrics") -> dict[str, object]:
        return {
            "job_name": name,
            "metrics_path": path,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }

    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            job("app", app_metrics_port),
            job("traefik", gw.TRAEFIK_PING_PORT),
            job("envoy", gw.ENVOY_STATS_PORT, "/stats/prometheus"),
        ],
    }


def prometheus_argv(
    binary: Path, workdir: Path, app_metrics_port: int, port: int = PROMETHEUS_PORT
) -> list[str]:
    """The command line, with its configuration and data directory written into `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(_config(app_metrics_port)))
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
