"""Build the install tools graylane's tests and `make manifests` use (Helm), from the Go module proxy.

`helm` renders the chart in deploy/chart (the plain manifests in deploy/manifests are its output, and a
test applies that output to the local API server with a server-side dry-run). No registry ships Helm's
binary, so it is built like the control plane (cluster/build.py): `go install helm.sh/helm/v4/cmd/helm@<v>`
into `<cache>/tools/helm-<v>/bin`, with a stamp written when the build finished, never into the repo.
Standard library only, like cluster/build.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from graylane.cluster.build import (
    BuildError,
    Progress,
    Versions,
    cache_root,
    check_prerequisites,
    go_env,
    run_go,
)

__all__ = ["HELM_MODULE", "HELM_VERSION", "ensure_helm", "helm_path", "main"]

HELM_MODULE = "helm.sh/helm/v4"
HELM_VERSION = "v4.3.2"


def _tool_dir(version: str) -> Path:
    return cache_root() / "tools" / f"helm-{version}"


def helm_path(version: str = HELM_VERSION) -> Path:
    return _tool_dir(version) / "bin" / "helm"


def _stamp(version: str) -> Path:
    return _tool_dir(version) / "stamp"


def ensure_helm(version: str = HELM_VERSION, out: Callable[[str], None] = print) -> Path:
    """The helm binary of `version`, built first if its stamp is missing (an interrupted build restarts)."""
    path = helm_path(version)
    if _stamp(version).exists() and os.access(path, os.X_OK):
        return path
    check_prerequisites(Versions())
    work = _tool_dir(version) / "src"
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(Versions()) | {"GOBIN": str(path.parent)}
    started = time.monotonic()
    # -X sets the version `helm version` prints; without it Helm says v4.x-dev.
    ldflags = f"-s -w -X helm.sh/helm/v4/internal/version.version={version}"
    run_go(
        ["install", "-ldflags", ldflags, f"{HELM_MODULE}/cmd/helm@{version}"],
        work,
        env,
        Progress(out),
        "helm",
    )
    if not os.access(path, os.X_OK):
        raise BuildError(f"go install finished but {path} is missing")
    _stamp(version).write_text(f"{time.monotonic() - started:.0f}\n")
    return path


def main() -> int:
    """`python -m graylane.cluster.tools`: build helm if needed and print its path."""
    try:
        print(ensure_helm(out=lambda line: print(line, file=sys.stderr, flush=True)))
    except (BuildError, subprocess.SubprocessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
