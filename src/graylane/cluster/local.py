"""Start, stop and inspect a real local Kubernetes control plane run by kwokctl's binary runtime.

The control plane is genuine (etcd, kube-apiserver with admission on, kube-controller-manager,
kube-scheduler); kwok plays the kubelet, so pods on the fake nodes become Running and Ready without
containers. Every listener is bound to 127.0.0.1. Cluster state lives under the graylane cache
(never in the repository); several clusters can run side by side under different names.

This module must not talk to any address outside 127.0.0.0/8.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from graylane.cluster import build

__all__ = ["ClusterError", "LocalCluster", "fake_node"]

POD_CIDR = "10.123.0.0/17"  # routable only inside the test network namespace (see docs)
NODE_LABEL = "type"


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped; the message says why."""


@dataclasses.dataclass(frozen=True)
class LocalCluster:
    name: str = "graylane"
    kubeconfig: Path | None = None
    versions: build.Versions = dataclasses.field(default_factory=build.Versions)
    # A network namespace (graylane.trafficlab.netns) that every process of the cluster runs in, and
    # kwokctl configuration documents added to ours (e.g. kwok Stages) when the cluster is created.
    netns: str | None = None
    documents: tuple[dict[str, object], ...] = ()

    @property
    def workdir(self) -> Path:
        return build.cache_root() / "kwok"

    @property
    def kubeconfig_path(self) -> Path:
        return self.kubeconfig or (self.workdir / "clusters" / self.name / "kubeconfig.yaml")

    def _inside(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.workdir)
        bins = build.bin_dir(self.versions)
        env["PATH"] = f"{bins}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _kwokctl(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        exe = str(build.binaries(self.versions)["kwokctl"])
        proc = subprocess.run(
            self._inside([exe, "--name", self.name, *args]),
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kwokctl {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
        return proc

    def exists(self) -> bool:
        return (self.workdir / "clusters" / self.name / "kwok.yaml").exists()

    def up(self, nodes: int = 3, out: Callable[[str], None] = print) -> Path:
        """Build what is missing, start the cluster if it is not running, and create fake nodes."""
        build.build_all(self.versions, out=out)
        if self.exists() and self.running():
            out(f"cluster {self.name} is already running")
        else:
            if self.exists():
                self._kwokctl("delete", "cluster", check=False)
            self._create(out)
        self._ensure_nodes(nodes)
        out(f"cluster {self.name} is up; kubeconfig: {self.kubeconfig_path}")
        return self.kubeconfig_path

    def _create(self, out: Callable[[str], None]) -> None:
        out(f"starting cluster {self.name} (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        self._create_with([*kwok_config(self.versions), *self.documents], [])

    def _create_with(self, documents: list[dict[str, object]], flags: list[str]) -> None:
        """`kwokctl create cluster` with these configuration documents and extra flags (the benchmark's)."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as cfg:
            yaml.safe_dump_all(documents, cfg)
        try:
            self._kwokctl(
                "create",
                "cluster",
                "--runtime",
                "binary",
                "--config",
                cfg.name,
                "--kube-admission=true",
                "--kube-authorization=true",
                *flags,
                "--kubeconfig",
                str(self.kubeconfig_path),
                "--wait",
                "120s",
                timeout=240,
            )
        finally:
            os.unlink(cfg.name)

    def running(self) -> bool:
        proc = self._kubectl("get", "--raw", "/readyz", check=False, timeout=10)
        return proc.returncode == 0 and proc.stdout.strip() == "ok"

    def down(self) -> bool:
        """Stop the cluster's processes and delete its state; False if there was no such cluster."""
        if not self.exists():
            return False
        self._kwokctl("delete", "cluster", timeout=120)
        if self.kubeconfig is not None and self.kubeconfig.exists():
            self.kubeconfig.unlink()
        return True

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "exists": self.exists(),
            "running": self.exists() and self.running(),
            "kubeconfig": str(self.kubeconfig_path),
            "missing_binaries": build.missing_binaries(self.versions),
        }

    def _kubectl(
        self, *args: str, check: bool = True, timeout: float = 60, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        kubectl = str(build.binaries(self.versions)["kubectl"])
        proc = subprocess.run(
            self._inside([kubectl, "--kubeconfig", str(self.kubeconfig_path), *args]),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
        return proc

    def _ensure_nodes(self, count: int) -> None:
        docs = [fake_node(f"kwok-node-{i}", i) for i in range(count)]
        self._kubectl(
            "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
        )
        # kwok marks the nodes Ready; until then the scheduler leaves pods Pending.
        names = [f"node/{doc['metadata']['name']}" for doc in docs]  # type: ignore[index]
        self._kubectl("wait", "--for=condition=Ready", "--timeout=90s", *names, timeout=120)


def kwok_config(versions: build.Versions) -> list[dict[str, object]]:
    """kwokctl configuration: our own binaries (no download), loopback listeners, admission on."""
    bins = build.binaries(versions)
    options = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        "kubeApiserverBinary": str(bins["kube-apiserver"]),
        "kubeControllerManagerBinary": str(bins["kube-controller-manager"]),
        "kubeSchedulerBinary": str(bins["kube-scheduler"]),
        "kubectlBinary": str(bins["kubectl"]),
        "kwokControllerBinary": str(bins["kwok"]),
        "etcdBinary": str(bins["etcd"]),
        "kubeVersion": versions.kubernetes,
        "kubeAdmission": True,
        "kubeAuthorization": True,
        "quietPull": True,
    }
    # No KwokConfiguration document: kwok v0.8.0 then skips its own defaults (node-lease parallelism
    # 0 makes it exit). Pod IPs come from each fake node's spec.podCIDR instead.
    return [
        {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration", "options": options}
    ]


def fake_node(name: str, index: int) -> dict[str, object]:
    """A Node that kwok manages (by annotation) with room for many pods and its own /24 of the pod CIDR."""
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "1000"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {NODE_LABEL: "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {"podCIDR": f"10.123.{index}.0/24", "podCIDRs": [f"10.123.{index}.0/24"]},
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def kwokctl_available(versions: build.Versions) -> bool:
    return shutil.which(str(build.binaries(versions)["kwokctl"])) is not None
