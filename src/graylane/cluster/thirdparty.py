"""Third-party CRDs graylane works with, fetched from their Go modules, never written by hand.

`fetch_gateway_api_crds(version)` asks the Go module proxy for `sigs.k8s.io/gateway-api@<version>` (with
the same Go environment as the control-plane build) and copies its standard-channel CRDs
(`config/crd/standard/*.yaml`) to `<cache>/thirdparty/gateway-api/<version>/`, so later calls need no
network. `fetch_istio_crds` does the same for the VirtualService and DestinationRule CRDs of the
`istio.io/api` module (one generated file holds all of Istio's CRDs; the two are cut out of it as
text). Gloo Edge's `gateway.solo.io` VirtualService CRD is not fetched: the Go module proxy reachable
here refuses every `github.com/solo-io/*` module (403), so the tests use an unmodified copy of the
generated file, vendored with its provenance in tests/integration/data/thirdparty/gloo/.
Standard library only, like cluster/build.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from graylane.cluster.build import BuildError, Versions, cache_root, go_env

__all__ = [
    "GATEWAY_API_MODULE",
    "GATEWAY_API_VERSION",
    "ISTIO_API_MODULE",
    "ISTIO_API_VERSION",
    "fetch_gateway_api_crds",
    "fetch_istio_crds",
    "module_dir",
    "split_crds",
]

GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.4.0"
_CRD_DIR = Path("config") / "crd" / "standard"
ISTIO_API_MODULE = "istio.io/api"
ISTIO_API_VERSION = "v1.24.2"
_ISTIO_FILE = Path("kubernetes") / "customresourcedefinitions.gen.yaml"
ISTIO_CRDS = ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io")


def fetch_gateway_api_crds(version: str = GATEWAY_API_VERSION) -> list[Path]:
    """Paths of the Gateway API standard CRD manifests of `version`, downloading them once."""

    def extract(module_dir: Path) -> dict[str, str]:
        sources = sorted((module_dir / _CRD_DIR).glob("*.yaml"))
        if not sources:
            raise BuildError(f"{GATEWAY_API_MODULE}@{version} has no {_CRD_DIR}/*.yaml")
        return {source.name: source.read_text() for source in sources}

    return _fetch("gateway-api", GATEWAY_API_MODULE, version, extract)


def fetch_istio_crds(version: str = ISTIO_API_VERSION) -> list[Path]:
    """Istio's VirtualService and DestinationRule CRD manifests of `version` (one file each)."""

    def extract(module_dir: Path) -> dict[str, str]:
        found = split_crds((module_dir / _ISTIO_FILE).read_text())
        missing = [name for name in ISTIO_CRDS if name not in found]
        if missing:
            raise BuildError(f"{ISTIO_API_MODULE}@{version} {_ISTIO_FILE} lacks {', '.join(missing)}")
        return {f"{name}.yaml": found[name] for name in ISTIO_CRDS}

    return _fetch("istio", ISTIO_API_MODULE, version, extract)


def split_crds(text: str) -> dict[str, str]:
    """CRD name -> its YAML document, from a multi-document file (cut as text: no YAML parser here)."""
    found = {}
    for document in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        kind = re.search(r"^kind:\s*CustomResourceDefinition\s*$", document, flags=re.MULTILINE)
        name = re.search(r"^metadata:\n(?:[ ].*\n)*?  name:\s*(\S+)\s*$", document, flags=re.MULTILINE)
        if kind and name:
            found[name.group(1)] = document.strip() + "\n"
    return found


def _fetch(project: str, module: str, version: str, extract: Callable[[Path], dict[str, str]]) -> list[Path]:
    """Files `extract` picks from `module@version`, cached in `<cache>/thirdparty/<project>/<version>/`."""
    target = cache_root() / "thirdparty" / project / version
    cached = sorted(target.glob("*.yaml"))
    if cached:
        return cached
    files = extract(_download(f"{module}@{version}"))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    for name, text in files.items():
        (staging / name).write_text(text)  # module files are read-only; copies are not
    try:
        staging.rename(target)  # all or nothing: a half-copied directory is never seen as cached
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(target.glob("*.yaml"))


def module_dir(module: str) -> Path:
    """Where the Go module cache holds `module@version` (downloaded if missing; read-only files)."""
    return _download(module)


def _download(module: str) -> Path:
    proc = subprocess.run(
        ["go", "mod", "download", "-json", module],
        env=go_env(Versions()),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        info = json.loads(proc.stdout) if proc.stdout else {}
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip()[-1000:]
        raise BuildError(f"`go mod download {module}` failed: {detail}")
    return Path(info["Dir"])
