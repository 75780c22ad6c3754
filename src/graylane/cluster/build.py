"""Build the local control plane from the Go module proxy, once, into a cache outside the repo.

What it builds: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (one throw-away
"builder" Go module that requires k8s.io/kubernetes and replaces every staging module with its
published version), etcd (a second builder module, so the two dependency graphs never mix), and
kwok + kwokctl (plain `go install`).

It must not: download release binaries, write inside the repository, or use anything but the
standard library (it runs before graylane's own dependencies are installed).

Each component leaves a stamp file when it is complete, so an interrupted build resumes where it
stopped; Go's own module and build caches make the retried step cheap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "BuildError",
    "Versions",
    "binaries",
    "build_all",
    "cache_root",
    "main",
    "missing_binaries",
]

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
MIN_FREE_DISK_GIB = 8


class BuildError(RuntimeError):
    """The build cannot go on; the message says what is missing and what to do."""


@dataclasses.dataclass(frozen=True)
class Versions:
    kubernetes: str = "v1.36.3"
    etcd: str = "v3.6.10"  # the etcd that kwok v0.8.0 pairs with Kubernetes 1.34-1.36
    kwok: str = "v0.8.0"
    go_line: str = "1.26.0"  # go line of k8s 1.36 and kwok 0.8.0

    @property
    def staging(self) -> str:
        """Staging modules are published as v0.<minor>.<patch> of the Kubernetes version."""
        return "v0." + self.kubernetes.removeprefix("v1.")

    @property
    def key(self) -> str:
        return f"k8s-{self.kubernetes}_etcd-{self.etcd}_kwok-{self.kwok}"


def cache_root() -> Path:
    base = os.environ.get("GRAYLANE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "graylane"
    )
    return Path(base)


def bin_dir(versions: Versions) -> Path:
    return cache_root() / versions.key / "bin"


def binaries(versions: Versions) -> dict[str, Path]:
    names = (*K8S_COMMANDS, "etcd", "kwok", "kwokctl")
    return {name: bin_dir(versions) / name for name in names}


def missing_binaries(versions: Versions) -> list[str]:
    return [name for name, path in binaries(versions).items() if not os.access(path, os.X_OK)]


# ----------------------------------------------------------------------------------------------
# Running go with progress


@dataclasses.dataclass
class Progress:
    """Prints which component is building and for how long; the build is long and silent."""

    out: Callable[[str], None]
    started: float = dataclasses.field(default_factory=time.monotonic)

    def say(self, component: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out(f"[build {elapsed:6.0f}s] {component}: {text}")


def go_env(versions: Versions) -> dict[str, str]:
    env = dict(os.environ)
    root = cache_root() / "go"
    env.update(
        GOTOOLCHAIN="local",  # fail fast rather than fetch a toolchain
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod -trimpath",
        GOMODCACHE=str(root / "mod"),
        GOCACHE=str(root / "build"),
        GOPATH=str(root / "path"),
    )
    return env


def run_go(args: Sequence[str], cwd: Path, env: dict[str, str], progress: Progress, component: str) -> str:
    """Run one go command, echoing a heartbeat every 30 s so a long compile is not mistaken for a hang."""
    progress.say(component, "go " + " ".join(args)[:160])
    log = cwd / "build.log"
    with log.open("a") as sink:
        proc = subprocess.Popen(
            ["go", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=sink, text=True
        )
        while True:
            try:
                stdout, _ = proc.communicate(timeout=30)
                break
            except subprocess.TimeoutExpired:
                progress.say(component, "still running")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BuildError(f"{component}: `go {' '.join(args)}` failed ({explain(tail)}):\n{tail}")
    return stdout


def explain(log_tail: str) -> str:
    """Turn the usual go failures into a sentence that says what is missing."""
    text = log_tail.lower()
    if "no space left" in text:
        return f"the disk is full; {MIN_FREE_DISK_GIB} GiB free are needed"
    if any(s in text for s in ("dial tcp", "connection refused", "i/o timeout", "403", "410 gone")):
        return "the Go module proxy refused or could not be reached (check GOPROXY and the network)"
    if "requires go >=" in text or "toolchain" in text:
        return "the installed Go is older than a module requires"
    return "see build.log"


# ----------------------------------------------------------------------------------------------
# Preconditions


def check_prerequisites(versions: Versions) -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "Go is not installed: install Go >= 1.26 (or pass --kubeconfig to use your own cluster)"
        )
    out = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    need = tuple(int(p) for p in versions.go_line.split(".")[:2])
    if match is None or (int(match.group(1)), int(match.group(2))) < need:
        raise BuildError(f"Go {versions.go_line} or newer is needed, found: {out.strip() or 'unknown'}")
    cache_root().mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache_root()).free / 2**30
    if free < MIN_FREE_DISK_GIB:
        raise BuildError(
            f"only {free:.1f} GiB free under {cache_root()}; the build needs {MIN_FREE_DISK_GIB} GiB"
        )


# ----------------------------------------------------------------------------------------------
# Components


def ldflags(versions: Versions) -> str:
    """Version variables as upstream's hack/lib/version.sh sets them; kwokctl sniffs `--version`."""
    v = versions.kubernetes
    major, minor = v.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": v,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{name}={value}" for name, value in values.items()]
    return " ".join(flags)


def staging_replaces(kubernetes_gomod: str, staging_version: str) -> list[str]:
    """Every `k8s.io/X => ./staging/src/k8s.io/X` line becomes a replace to the published module."""
    found = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/", kubernetes_gomod, re.M)
    if not found:
        raise BuildError("k8s.io/kubernetes go.mod lists no staging modules; the version layout changed")
    return [f"-replace={mod}={mod}@{staging_version}" for mod in sorted(set(found))]


def build_kubernetes(versions: Versions, progress: Progress) -> None:
    name = "kubernetes " + versions.kubernetes
    work = fresh_module_dir(versions, "k8sbuild")
    env = go_env(versions)
    run_go(["mod", "init", "local/k8sbuild"], work, env, progress, name)
    run_go(["mod", "edit", f"-go={versions.go_line}", "-godebug=default=go1.26"], work, env, progress, name)
    info = json.loads(
        run_go(
            ["mod", "download", "-json", f"k8s.io/kubernetes@{versions.kubernetes}"],
            work,
            env,
            progress,
            name,
        )
    )
    gomod = Path(info["GoMod"]).read_text()
    run_go(["mod", "edit", *staging_replaces(gomod, versions.staging)], work, env, progress, name)
    run_go(["mod", "edit", f"-require=k8s.io/kubernetes@{versions.kubernetes}"], work, env, progress, name)
    cmds = [f"k8s.io/kubernetes/cmd/{c}" for c in K8S_COMMANDS]
    (work / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n" + "".join(f'\t_ "{c}"\n' for c in cmds) + ")\n"
    )
    run_go(["mod", "tidy"], work, env, progress, name)
    out = bin_dir(versions)
    run_go(["build", "-ldflags", ldflags(versions), "-o", str(out) + "/", *cmds], work, env, progress, name)


def build_etcd(versions: Versions, progress: Progress) -> None:
    name = "etcd " + versions.etcd
    work = fresh_module_dir(versions, "etcdbuild")
    env = go_env(versions)
    run_go(["mod", "init", "local/etcdbuild"], work, env, progress, name)
    run_go(["mod", "edit", f"-go={versions.go_line}"], work, env, progress, name)
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n'
    )
    run_go(["get", f"go.etcd.io/etcd/server/v3@{versions.etcd}"], work, env, progress, name)
    run_go(["mod", "tidy"], work, env, progress, name)
    out = bin_dir(versions) / "etcd"
    run_go(
        ["build", "-ldflags", "-s -w", "-o", str(out), "go.etcd.io/etcd/server/v3"], work, env, progress, name
    )


def build_kwok(versions: Versions, progress: Progress) -> None:
    name = "kwok " + versions.kwok
    work = fresh_module_dir(versions, "kwokbuild")
    env = go_env(versions) | {"GOBIN": str(bin_dir(versions))}
    pkgs = [f"sigs.k8s.io/kwok/cmd/{c}@{versions.kwok}" for c in ("kwok", "kwokctl")]
    run_go(["install", "-ldflags", "-s -w", *pkgs], work, env, progress, name)


def fresh_module_dir(versions: Versions, name: str) -> Path:
    """A builder module is regenerated on every attempt: a half-written go.mod must not survive."""
    work = cache_root() / versions.key / "src" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


COMPONENTS: dict[str, Callable[[Versions, Progress], None]] = {
    "etcd": build_etcd,
    "kwok": build_kwok,
    "kubernetes": build_kubernetes,
}


def stamp(versions: Versions, component: str) -> Path:
    return cache_root() / versions.key / "stamps" / component


def build_all(versions: Versions, out: Callable[[str], None] = print) -> dict[str, float]:
    """Build what is missing; returns wall seconds per component built (empty when all were cached)."""
    progress = Progress(out)
    timings: dict[str, float] = {}
    for component, builder in COMPONENTS.items():
        if stamp(versions, component).exists() and not _component_missing(versions, component):
            continue
        check_prerequisites(versions)
        bin_dir(versions).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        builder(versions, progress)
        timings[component] = time.monotonic() - started
        stamp(versions, component).parent.mkdir(parents=True, exist_ok=True)
        stamp(versions, component).write_text(f"{timings[component]:.0f}\n")
        progress.say(component, f"done in {timings[component]:.0f}s")
    return timings


def _component_missing(versions: Versions, component: str) -> bool:
    names = {"etcd": ["etcd"], "kwok": ["kwok", "kwokctl"], "kubernetes": list(K8S_COMMANDS)}[component]
    return any(name in missing_binaries(versions) for name in names)


def disk_usage(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m graylane.cluster.build [--measure FILE]`: build, and optionally record figures."""
    args = list(sys.argv[1:] if argv is None else argv)
    versions = Versions()
    started = time.monotonic()
    try:
        timings = build_all(versions, out=lambda line: print(line, flush=True))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    figures = {
        "wall_seconds": round(time.monotonic() - started),
        "per_component_seconds": {k: round(v) for k, v in timings.items()},
        "peak_child_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "cache_gib": round(disk_usage(cache_root()) / 2**30, 2),
        "binaries_mib": round(disk_usage(bin_dir(versions)) / 2**20),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))
    if args[:1] == ["--measure"] and len(args) > 1:
        Path(args[1]).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
