"""`graylane bench`: a reproducible load benchmark of the controller on a fresh local cluster.

Two modes: `release` (N Rollouts released at once, approved at the first pause, followed to the end:
transition latencies, time to pause and to complete, peak and resting RSS, CPU, API requests per
Rollout per step, errors) and `rest` (N Rollouts cached but never released: RSS after sync and its
slope over an idle soak, requests while idle). See BENCHMARKS.md for the method and the figures.

This package must not be imported by the controller: it drives the controller from outside, as a
separate process, through the API server and the controller's /metrics.
"""

from graylane.bench.cli import bench

__all__ = ["bench"]
