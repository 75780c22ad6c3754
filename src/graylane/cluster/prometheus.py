"""Fetch Debian bookworm's Prometheus 2.42.0 into the cache, once, for the tests that query a real one.

``fetch_prometheus()`` returns the path of the ``prometheus`` binary under
``<cache>/thirdparty/prometheus/2.42.0/``. When the stamp is missing it runs ``apt-get download
prometheus`` (the package archive's ordinary client; nothing is installed and no service starts),
checks that the package is upstream 2.42.0, unpacks it with ``dpkg-deb -x`` in a scratch directory and
copies the one binary out. The stamp records the exact Debian version and the .deb's SHA-256. The
binary is never written into the repository.

``python -m graylane.cluster.prometheus`` does the same from the command line (``make prometheus``).
Standard library only, like cluster/build.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from graylane.cluster.build import BuildError, cache_root

__all__ = ["PACKAGE", "UPSTREAM_VERSION", "fetch_prometheus", "main", "prometheus_dir"]

PACKAGE: Final = "prometheus"
UPSTREAM_VERSION: Final = "2.42.0"
_APT_TIMEOUT: Final = 600


def prometheus_dir(version: str = UPSTREAM_VERSION) -> Path:
    return cache_root() / "thirdparty" / "prometheus" / version


def _run(args: Sequence[str], cwd: Path) -> str:
    try:
        done = subprocess.run(
            list(args), cwd=cwd, capture_output=True, text=True, timeout=_APT_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise BuildError(f"{args[0]} is not installed: Prometheus is taken from Debian's package") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"`{' '.join(args)}` took more than {_APT_TIMEOUT} s") from None
    if done.returncode != 0:
        hint = ""
        if "Unable to locate package" in done.stderr or "has no installation candidate" in done.stderr:
            hint = (
                " (no bookworm `prometheus` in the apt sources: run `apt-get update`, or add bookworm main)"
            )
        raise BuildError(f"`{' '.join(args)}` failed{hint}: {done.stderr.strip()[-1000:]}")
    return done.stdout


def fetch_prometheus(out: Callable[[str], None] = print) -> Path:
    """Path of the cached ``prometheus`` binary, downloading and unpacking it when missing."""
    target = prometheus_dir()
    binary, stamp = target / "prometheus", target / "stamp"
    if stamp.is_file() and os.access(binary, os.X_OK):
        return binary
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graylane-prometheus-") as scratch:
        work = Path(scratch)
        out(f"prometheus: apt-get download {PACKAGE} into {work}")
        _run(["apt-get", "download", PACKAGE], work)
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if len(debs) != 1:
            raise BuildError(f"apt-get download left {len(debs)} {PACKAGE} packages, expected one")
        version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], work).strip()
        if not version.startswith(UPSTREAM_VERSION + "+"):
            raise BuildError(
                f"the apt sources offer {PACKAGE} {version}, not Debian bookworm's {UPSTREAM_VERSION}"
            )
        _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], work)
        unpacked = work / "root" / "usr" / "bin" / "prometheus"
        if not unpacked.is_file():
            raise BuildError(f"{debs[0].name} has no usr/bin/prometheus")
        # Copy then rename: a concurrent reader never runs a half-written binary.
        partial = target / f".prometheus.{os.getpid()}"
        shutil.copy2(unpacked, partial)
        partial.chmod(0o755)
        os.replace(partial, binary)
        digest = hashlib.sha256(debs[0].read_bytes()).hexdigest()
    stamp.write_text(f"{PACKAGE} {version}\nsha256 {digest}\n")
    out(f"prometheus: {version} -> {binary}")
    return binary


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    try:
        print(fetch_prometheus(out=lambda line: print(line, flush=True)))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
