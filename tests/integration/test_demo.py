"""The README's main job: `graylane demo` runs unattended to its summary, and `cluster down` cleans up."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from graylane.cluster.local import LocalCluster


def _graylane(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graylane.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_unattended_to_its_summary() -> None:
    name = f"gl-demo-{os.getpid()}"
    try:
        run = _graylane("demo", "--name", name, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        lines = run.stdout.splitlines()
        assert any(
            line.startswith("- step 1/3: Rollout is in step(1/3), and you need manually confirm")
            for line in lines
        )
        assert any(
            "completed: Rollout progressing has been completed; pods {'demo:v2': 5}" in line for line in lines
        )
        assert any(
            "rolled back: Rollout progressing has been cancelled; pods {'demo:v2': 5}" in line
            for line in lines
        )
        assert (
            "- traffic at step 1 (weighted canary): Ingress canary-weight=20; "
            "HTTPRoute demo 80 / demo-canary 20" in lines
        )
        assert any(
            line.startswith(
                "- traffic at step 2 (A/B test by header): Ingress canary-by-header=x-canary, "
                "canary-by-header-value=beta"
            )
            for line in lines
        )
        assert "- traffic after completion: Ingress no canary Ingress; HTTPRoute demo 1" in lines
        if os.geteuid() == 0:  # real requests through Traefik in the demo's own network namespace
            step_one = next(line for line in lines if line.startswith("- requests at step 1: "))
            shares = [int(n) for n in re.findall(r"demo:v2 (\d+)", step_one)]
            assert len(shares) == 2, step_one  # both doors; Traefik's balancer is deterministic
            assert all(abs(n - 200) <= 2 for n in shares), step_one
            assert (
                "- requests at step 2: Traefik ingress-nginx x-canary: beta -> demo:v2 100/100, without it "
                "-> demo:v1 100/100; Traefik HTTPRoute x-canary: beta -> demo:v2 100/100, without it -> "
                "demo:v1 100/100" in lines
            )
            assert any(line.startswith("- requests after the rollback: ") for line in lines)
        else:  # it says why it cannot, and shows the objects instead
            assert any(line.startswith("- note: requests are not sent: ") for line in lines)
        assert any(line.startswith("summary: ") for line in lines)
    finally:
        down = _graylane("cluster", "down", "--name", name, timeout=180)
    assert down.returncode == 0, down.stderr
    assert "stopped the graylane controller started by the demo" in down.stdout
    assert not LocalCluster(name=name).exists()
