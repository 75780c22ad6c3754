"""`graylane cluster build|up|down|status`: the real local Kubernetes used by the demo and the tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from graylane.cli.demo import lab_dir, lab_netns
from graylane.cluster import build, gateways
from graylane.cluster.local import ClusterError, LocalCluster
from graylane.demo.background import BackgroundController
from graylane.trafficlab.lab import TrafficLab

__all__ = ["cluster"]


def _echo(line: str) -> None:
    click.echo(line, err=True)


@click.group()
def cluster() -> None:
    """A real local control plane (etcd, kube-apiserver, controller-manager, scheduler) with kwok nodes."""


@cluster.command("build")
def build_cmd() -> None:
    """Build the binaries from the Go module proxy into the cache (resumes after an interruption):
    the control plane, then the gateways of the traffic tier (Traefik, Contour)."""
    try:
        timings = build.build_all(build.Versions(), out=_echo)
        timings |= gateways.build_gateways(out=_echo)
    except build.BuildError as err:
        raise click.ClickException(str(err)) from err
    where = f"{build.bin_dir(build.Versions())} and {gateways.bin_dir(gateways.GatewayVersions())}"
    _echo(f"binaries ready in {where}" + (f" (built: {', '.join(timings)})" if timings else " (cached)"))


_name = click.option("--name", default="graylane", show_default=True, help="Cluster name (several can run).")
_kubeconfig = click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the cluster's kubeconfig (default: under the graylane cache).",
)


@cluster.command("up")
@_name
@_kubeconfig
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 100), help="Fake kwok nodes.")
def up(name: str, kubeconfig: Path | None, nodes: int) -> None:
    """Build if needed, start the cluster, create fake nodes, print the kubeconfig path."""
    try:
        path = LocalCluster(name=name, kubeconfig=kubeconfig).up(nodes=nodes, out=_echo)
    except (build.BuildError, ClusterError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(path))


@cluster.command("down")
@_name
@_kubeconfig
def down(name: str, kubeconfig: Path | None) -> None:
    """Stop the cluster's processes and delete its state."""
    if TrafficLab.stop_detached(lab_dir(name)):
        click.echo("stopped the graylane controller started by the demo, its gateways and fake app")
        click.echo(f"cluster {name} stopped and deleted, network namespace {lab_netns(name)} deleted")
        return
    local = LocalCluster(name=name, kubeconfig=kubeconfig)
    state = local.workdir / "clusters" / name / "graylane"
    if BackgroundController(state, local.kubeconfig_path).stop():
        click.echo("stopped the graylane controller started by the demo")
    try:
        stopped = local.down()
    except ClusterError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"cluster {name} " + ("stopped and deleted" if stopped else "did not exist"))


@cluster.command("status")
@_name
@_kubeconfig
def status(name: str, kubeconfig: Path | None) -> None:
    """Whether the cluster exists and answers, and which binaries are still missing."""
    info = LocalCluster(name=name, kubeconfig=kubeconfig).status()
    json.dump(info, sys.stdout, indent=2)
    click.echo()
    if not info["running"]:
        sys.exit(1)
