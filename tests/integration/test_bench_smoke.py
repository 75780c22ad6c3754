"""`graylane bench` end to end at a small N: its own cluster, a whole release, the JSON it writes, clean-up.

The figures themselves are benchmark output (BENCHMARKS.md), not asserted here; this checks that the
benchmark measures what it says: every transition of every Rollout, graylane's requests attributed by its
User-Agent and cross-checked, the controller's memory, and that its cluster is gone afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from graylane.cluster.local import LocalCluster

N = 3


def test_a_small_release_is_measured_end_to_end(tmp_path: Path) -> None:
    name, out = f"gl-bench-test-{os.getpid()}", tmp_path / "bench.json"
    args = ["bench", "--mode", "release", "-n", str(N), "--idle", "5", "--phase-timeout", "300"]
    args += ["--profile", "--keep-audit"]
    args += ["--cluster-name", name, "--run-dir", str(tmp_path / "run"), "--out", str(out)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "graylane.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        LocalCluster(name=name).down()  # no-op when the benchmark already deleted it
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["outcome"]["completed"] is True
    transitions = result["latency"]["transitions"]
    for step in ("release", "step1_paused", "approve", "step2_completed", "healthy"):
        assert transitions[step]["count"] == N, step
    assert result["latency"]["pooled_target_transitions"]["count"] == 4 * N
    combined = result["requests"]["release_steps_combined"]
    assert combined["writes"] > 0  # graylane's requests were found in the audit log by its User-Agent
    assert combined["by_key_per_rollout_step"]["update rollouts/status"] > 0
    metric = result["requests"]["controller_metric"]
    assert metric["exposed"] is True  # graylane_api_requests_total on the controller's /metrics
    for phase, counts in result["requests"]["cross_check"].items():
        assert abs(counts["audit_all_clients"] - counts["apiserver_request_total"]) <= 50, phase
    assert result["memory"]["peak_rss_vmhwm_mb"] > 0
    assert {t["name"] for t in result["targets"]} >= {"peak controller RSS", "p99 transition latency"}
    assert "controller CPU per API request" in {t["name"] for t in result["targets"]}  # issue 14's
    summary = result["summary"]
    assert summary["schema"] >= 1
    assert summary["rollouts"] == N
    assert summary["release_cpu_ms_per_request"] > 0
    assert summary["step1_writes_per_rollout"] > 0
    assert summary["step2_writes_per_rollout"] > 0
    profile = result["profile"]  # py-spy ran against the controller during the release
    assert profile["samples"] > 0
    assert any("graylane/" in name for name, _ in profile["top_inclusive"])
    assert Path(profile["path"]).stat().st_size > 0
    assert list((tmp_path / "run" / "audit").glob("audit*.log"))  # --keep-audit
    assert not LocalCluster(name=name).exists()
