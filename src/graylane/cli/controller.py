"""`graylane controller`, `graylane install`, `graylane uninstall`."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import sys

import click

from graylane.controller.app import ControllerOptions, run_controller, webhook_certs
from graylane.kube.client import KubeClient
from graylane.kube.logs import setup_logging
from graylane.runtime.manager import ManagerOptions
from graylane.webhook.install import install as install_webhooks
from graylane.webhook.install import uninstall as uninstall_webhooks

__all__ = ["controller", "install", "uninstall"]

kubeconfig_option = click.option(
    "--kubeconfig", default=None, help="Path to a kubeconfig (default: as kubectl)."
)
context_option = click.option("--context", default=None, help="The kubeconfig context to use.")


@click.command()
@kubeconfig_option
@context_option
@click.option("--namespace", default="kruise-rollout", show_default=True, help="Namespace of the lease.")
@click.option("--webhook-port", default=9876, show_default=True, help="HTTPS port of the webhooks (0: any).")
@click.option("--health-port", default=8081, show_default=True, help="Port of /healthz /readyz /metrics.")
@click.option(
    "--install/--no-install",
    default=True,
    show_default=True,
    help="Point CRDs and webhook configurations at this process on start-up (URL mode).",
)
@click.option("--leader-elect/--no-leader-elect", default=True, show_default=True)
@click.option("--identity", default=None, help="Leader-election identity (default: host_uuid).")
@click.option(
    "--rollout-workers",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Concurrent Rollout reconciles (the BatchRelease controller gets as many).",
)
@click.option("--log-level", default="INFO", show_default=True)
def controller(
    kubeconfig: str | None,
    context: str | None,
    namespace: str,
    webhook_port: int,
    health_port: int,
    install: bool,
    leader_elect: bool,
    identity: str | None,
    rollout_workers: int,
    log_level: str,
) -> None:
    """Run the controller: Rollout reconciler, webhooks, leader election, health and metrics."""
    setup_logging(log_level)
    # One line per HTTP request drowns the controller's own messages; failures still surface as errors.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    manager = ManagerOptions(leader_election=leader_elect, lease_namespace=namespace, probe_port=health_port)
    if identity:
        manager = dataclasses.replace(manager, identity=identity)
    options = ControllerOptions(
        kubeconfig=kubeconfig,
        context=context,
        namespace=namespace,
        webhook_port=webhook_port,
        install=install,
        manager=manager,
        rollout_workers=rollout_workers,
    )
    sys.exit(asyncio.run(run_controller(options)))


@click.command()
@kubeconfig_option
@context_option
@click.option(
    "--webhook-url",
    default="https://127.0.0.1:9876",
    show_default=True,
    help="Where the API server reaches the controller's webhooks (URL mode).",
)
@click.option("--namespace", default="kruise-rollout", show_default=True)
def install(kubeconfig: str | None, context: str | None, webhook_url: str, namespace: str) -> None:
    """Apply the CRDs and webhook configurations, pointing at a controller on this machine."""
    store = webhook_certs("graylane")
    ca = store.ensure(dt.datetime.now(dt.UTC)).ca_pem

    async def go() -> None:
        async with KubeClient.from_kubeconfig(kubeconfig, context) as client:
            await install_webhooks(client, url_base=webhook_url, service=None, ca_pem=ca, namespace=namespace)

    asyncio.run(go())
    click.echo(f"installed CRDs and webhooks -> {webhook_url}")


@click.command()
@kubeconfig_option
@context_option
@click.option(
    "--crds", is_flag=True, help="Also delete the CRDs (this deletes every Rollout in the cluster)."
)
def uninstall(kubeconfig: str | None, context: str | None, crds: bool) -> None:
    """Remove the webhook configurations (and the CRDs with --crds)."""

    async def go() -> None:
        async with KubeClient.from_kubeconfig(kubeconfig, context) as client:
            await uninstall_webhooks(client, remove_crds=crds)

    asyncio.run(go())
    click.echo("uninstalled webhooks" + (" and CRDs" if crds else ""))
