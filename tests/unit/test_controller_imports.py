"""What the controller process loads: not the CLI's verbs, the benchmark, cryptography, lightkube, httpx,
YAML or the analysis judge (issue 14: each module costs resident memory for the process' whole life; the
certificate work and the kubeconfig's reading run in children, the judge loads with a judge metric)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "anyio",
    "cryptography",
    "graylane.analysis.judge",
    "graylane.bench",
    "graylane.cli.cluster",
    "graylane.cli.demo",
    "graylane.cli.ops",
    "graylane.cli.plan",
    "graylane.cli.rollouts",
    "graylane.cli.view",
    "graylane.cluster",
    "graylane.demo",
    "graylane.kube.transport_httpx",
    "graylane.planview",
    "graylane.trafficlab",
    "graylane.webhook.certs",
    "httpcore2",
    "httpx2",
    "hypothesis",
    "lightkube",
    "lupa",
    "pytest",
    "rich",
    "statistics",
    "yaml",
)
# Imports what `graylane controller` imports before it runs (its command module and the app it runs).
PROBE = """
import json, sys
import graylane.cli.main, graylane.cli.controller, graylane.controller.app, graylane.kube.logs
print(json.dumps(sorted(sys.modules)))
"""


def test_the_controller_loads_no_cli_verb_benchmark_cryptography_or_lightkube() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    modules = json.loads(proc.stdout)
    assert "graylane.controller.app" in modules
    assert "graylane.webhook.certchild" in modules
    assert "graylane.kube.credentials" in modules
    assert not [m for m in modules if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)]
