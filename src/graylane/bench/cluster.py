"""The benchmark's own fresh local cluster: `LocalCluster` plus an audit log, sized for N apps.

What it does: starts a cluster under its own name (never the demo's or a test's) with the kube-apiserver
audit log on (see bench/audit.py for why), enough fake kwok nodes for every pod a release can have at
once, and tells where the audit log and the control-plane pids are. It always starts from nothing: a
cluster left behind under the same name by an interrupted run is deleted first.

What it must not do: touch a cluster of another name, or listen on anything but 127.0.0.1 (the
`LocalCluster` configuration binds every component there).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from graylane.bench import audit
from graylane.cluster.local import LocalCluster, kwok_config

__all__ = ["BenchCluster", "nodes_for", "qps_patches"]

PODS_PER_NODE = 900  # fake_node() allows 1000; keep headroom for the scheduler's spreading


def nodes_for(apps: int, replicas: int) -> int:
    """Nodes for the most pods an app has at once: stable + full canary + one surge pod."""
    peak_pods = apps * (2 * replicas + 1)
    return max(1, math.ceil(peak_pods / PODS_PER_NODE))


def qps_patches(qps: int) -> list[dict[str, object]]:
    """kwokctl componentsPatches raising the controller-manager's and scheduler's client rate limits.

    Their defaults (20 requests/s, burst 30; scheduler 50/100) make the controller-manager the
    bottleneck of a 1,000-app release on one machine: every canary Deployment costs it several writes,
    so pods become Ready minutes after graylane asked for them. Raising them measures graylane rather
    than a throttled controller-manager; the benchmark records the value.
    """
    args = [{"key": "kube-api-qps", "value": str(qps)}, {"key": "kube-api-burst", "value": str(qps * 2)}]
    return [{"name": name, "extraArgs": args} for name in ("kube-controller-manager", "kube-scheduler")]


@dataclasses.dataclass(frozen=True)
class BenchCluster(LocalCluster):
    audit_log: bool = True
    control_plane_qps: int | None = None  # None: Kubernetes' defaults

    @property
    def state_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "logs" / "audit.log"

    def fresh(self, nodes: int, out: Callable[[str], None]) -> Path:
        """Delete any leftover cluster of this name, then start a new one; returns the kubeconfig."""
        if self.exists():
            out(f"deleting the leftover cluster {self.name}")
            self.down()
        return self.up(nodes=nodes, out=out)

    def _create(self, out: Callable[[str], None]) -> None:
        out(f"starting cluster {self.name} (audit log {'on' if self.audit_log else 'off'})")
        documents = kwok_config(self.versions)
        if self.control_plane_qps is not None:
            documents[0]["componentsPatches"] = qps_patches(self.control_plane_qps)
        if not self.audit_log:
            self._create_with(documents, [])
            return
        with tempfile.TemporaryDirectory() as tmp:
            policy = Path(tmp) / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(audit.policy()))
            self._create_with(documents, ["--kube-audit-policy", str(policy)])

    def component_pids(self) -> dict[str, int]:
        """Control-plane process ids by component, from kwokctl's pid files (only those alive)."""
        pids: dict[str, int] = {}
        for path in sorted((self.state_dir / "pids").glob("*.pid")):
            try:
                pid = int(path.read_text().strip())
                os.kill(pid, 0)  # signal 0: only asks whether the pid exists
            except (OSError, ValueError):
                continue
            pids[path.stem] = pid
        return pids
