"""Third-party CRDs graylane works with, fetched from their Go modules, never written by hand.

`fetch_gateway_api_crds(version)` asks the Go module proxy for `sigs.k8s.io/gateway-api@<version>` (with
the same Go environment as the control-plane build) and copies its standard-channel CRDs
(`config/crd/standard/*.yaml`) to `<cache>/thirdparty/gateway-api/<version>/`, so later calls need no
network. Standard library only, like cluster/build.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from graylane.cluster.build import BuildError, Versions, cache_root, go_env

__all__ = ["GATEWAY_API_MODULE", "GATEWAY_API_VERSION", "fetch_gateway_api_crds"]

GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.4.0"
_CRD_DIR = Path("config") / "crd" / "standard"


def fetch_gateway_api_crds(version: str = GATEWAY_API_VERSION) -> list[Path]:
    """Paths of the Gateway API standard CRD manifests of `version`, downloading them once."""
    target = cache_root() / "thirdparty" / "gateway-api" / version
    cached = sorted(target.glob("*.yaml"))
    if cached:
        return cached
    module_dir = _download(f"{GATEWAY_API_MODULE}@{version}")
    sources = sorted((module_dir / _CRD_DIR).glob("*.yaml"))
    if not sources:
        raise BuildError(f"{GATEWAY_API_MODULE}@{version} has no {_CRD_DIR}/*.yaml")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    for source in sources:
        shutil.copyfile(source, staging / source.name)  # module files are read-only; copies are not
    try:
        staging.rename(target)  # all or nothing: a half-copied directory is never seen as cached
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(target.glob("*.yaml"))


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
