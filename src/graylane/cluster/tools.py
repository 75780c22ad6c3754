"""Build the install tools graylane's tests and `make manifests` use (Helm), from the Go module proxy.

`helm` renders the chart in deploy/chart (the plain manifests in deploy/manifests are its output, and a
test applies that output to the local API server with a server-side dry-run). No registry ships Helm's
binary, so it is built like the control plane (cluster/build.py): `go install helm.sh/helm/v4/cmd/helm@<v>`
into `<cache>/tools/helm-<v>/bin`, with a stamp written when the build finished, never into the repo.
Building helm uses the standard library only, like cluster/build.py; rendering the chart needs PyYAML.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from graylane.cluster.build import (
    BuildError,
    Progress,
    Versions,
    cache_root,
    check_prerequisites,
    go_env,
    run_go,
)

__all__ = [
    "CHART",
    "HELM_MODULE",
    "HELM_VERSION",
    "MANIFESTS",
    "ensure_helm",
    "helm_path",
    "main",
    "render_chart",
    "sync_chart_crds",
]

ROOT = Path(__file__).resolve().parents[3]  # the repository (this module is src/graylane/cluster/)
CHART = ROOT / "deploy" / "chart" / "graylane"
MANIFESTS = ROOT / "deploy" / "manifests" / "graylane.yaml"
CRDS = ROOT / "manifests" / "crds"
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


def render_chart(helm: Path, *, sets: dict[str, str] | None = None, namespace: str | None = None) -> str:
    """`helm template` of the chart with its CRDs; `sets` are --set values (Kruise's names)."""
    args = [str(helm), "template", "graylane", str(CHART)]
    for key, value in sorted((sets or {}).items()):
        plain = value.isdigit() or value in ("true", "false")  # numbers and booleans keep their type
        args += ["--set" if plain else "--set-string", f"{key}={value}"]
    if namespace is not None:
        args += ["--set", f"installation.namespace={namespace}"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise BuildError(f"helm template failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


CRD_TEMPLATE = CHART / "templates" / "crds.yaml"
_NS, _PORT = "__GRAYLANE_NAMESPACE__", 4430443  # stand-ins replaced by template expressions


def chart_crds() -> str:
    """templates/crds.yaml: crdgen's CRDs whose conversion calls the webhook Service of the release.

    The leader writes the same Service reference (plus the caBundle) in Service mode, so re-applying the
    manifests, even server-side, co-owns those fields instead of fighting over them; the CRDs are kept
    on `helm uninstall` (deleting a CRD deletes every Rollout in the cluster).
    """
    from graylane.api import crdgen  # not standard library: only `make manifests` renders the chart
    from graylane.webhook.install import SERVICE_NAME

    service = {"name": SERVICE_NAME, "namespace": _NS, "path": "/convert", "port": _PORT}
    docs = []
    for name, crd in sorted(crdgen.crd_documents().items()):
        crd = crdgen.with_conversion_client(crd, {"service": service})
        crd["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
        docs.append(
            f"# {name}, from the graylane.api models (crdgen)\n" + yaml.safe_dump(crd, sort_keys=True)
        )
    # Descriptions quote Argo-style `{{args.name}}`: literal braces for Helm's template engine.
    text = "---\n".join(docs).replace("{{", '{{ "{{" }}')
    text = text.replace(_NS, "{{ .Values.installation.namespace }}")
    return CRD_HEADER + text.replace(str(_PORT), "{{ .Values.service.port }}")


CRD_HEADER = "# Generated by `make manifests` from the graylane.api models. Do not edit.\n"


def sync_chart_crds() -> None:
    CRD_TEMPLATE.write_text(chart_crds())


def main(argv: list[str] | None = None) -> int:
    """`python -m graylane.cluster.tools [manifests]`: build helm if needed and print its path; with
    `manifests`, also copy the CRDs into the chart and write deploy/manifests/graylane.yaml from it."""
    args = sys.argv[1:] if argv is None else argv
    try:
        helm = ensure_helm(out=lambda line: print(line, file=sys.stderr, flush=True))
        if args[:1] == ["manifests"]:
            sync_chart_crds()
            MANIFESTS.parent.mkdir(parents=True, exist_ok=True)
            MANIFESTS.write_text(MANIFEST_HEADER + render_chart(helm))
            print(MANIFESTS)
        else:
            print(helm)
    except (BuildError, subprocess.SubprocessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


MANIFEST_HEADER = (
    "# Generated by `make manifests` (helm template of deploy/chart/graylane with its default values).\n"
    "# Do not edit: change the chart and regenerate. Apply with `kubectl apply -f`.\n"
)


if __name__ == "__main__":
    raise SystemExit(main())
