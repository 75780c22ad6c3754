"""The chaos suite's own local cluster: `LocalCluster` with the kube-apiserver on a port nobody else takes.

Why a chosen port: kwokctl gives each new cluster's components the highest free ports below 32768,
counting down. When the chaos suite stops the API server to restart it, its port is free for a moment,
and on a shared machine the next cluster someone creates takes exactly that port (seen: another
cluster's etcd bound it 20 s into a restart, and the restarted API server failed with "address already
in use"). A port in 20000-29999 is below kwokctl's range and the kernel's ephemeral range (32768+), so
nothing on this machine picks it on its own.
"""

from __future__ import annotations

import dataclasses
import random
import socket
from collections.abc import Callable

from graylane.bench.cluster import qps_patches
from graylane.cluster.local import LocalCluster, kwok_config

__all__ = ["ChaosCluster", "pick_apiserver_port"]

PORT_RANGE = range(20000, 30000)
# Client rate limits of the controller-manager and scheduler (Kubernetes' defaults: 20/s and 50/s) made
# them the bottleneck, not graylane: with 24 lanes a ReplicaSet created its pods up to 8 s after being
# scaled. The benchmark raises them the same way (bench/cluster.py).
CONTROL_PLANE_QPS = 200


def pick_apiserver_port(rng: random.Random) -> int:
    """A free port of PORT_RANGE (checked by binding it on 127.0.0.1)."""
    for port in rng.sample(PORT_RANGE, 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port among 50 tried in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


@dataclasses.dataclass(frozen=True)
class ChaosCluster(LocalCluster):
    apiserver_port: int = 0

    def _create(self, out: Callable[[str], None]) -> None:
        if not self.apiserver_port:
            raise ValueError("ChaosCluster.apiserver_port must be set (pick_apiserver_port)")
        out(f"starting cluster {self.name} with kube-apiserver on 127.0.0.1:{self.apiserver_port}")
        documents = kwok_config(self.versions)
        documents[0]["componentsPatches"] = qps_patches(CONTROL_PLANE_QPS)
        self._create_with(documents, ["--kube-apiserver-port", str(self.apiserver_port)])
