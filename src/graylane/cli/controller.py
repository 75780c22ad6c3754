"""`graylane controller`, `graylane install`, `graylane uninstall`.

Heavy modules (the controller, the webhook server) are imported inside the commands, so that loading
this module for `--help` stays cheap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import sys

import click

from graylane.kube.client import KubeClient

__all__ = ["controller", "install", "uninstall"]

kubeconfig_option = click.option(
    "--kubeconfig", default=None, help="Path to a kubeconfig (default: as kubectl)."
)
context_option = click.option("--context", default=None, help="The kubeconfig context to use.")


# Kruise Rollout's feature gates (its chart's rollout.featureGates): graylane accepts the names so a
# Kruise values file works unchanged; only AdvancedDeployment changes what graylane does.
FEATURE_GATES = {
    "AdvancedDeployment": True,
    "RolloutHistory": False,
    "AppendPodSelector": False,
    "KeepWorkloadPausedOnRolloutDeletion": False,
}
SUPPORTED_GATES = frozenset({"AdvancedDeployment"})


def parse_feature_gates(text: str) -> dict[str, bool]:
    """`A=true,B=false` over the defaults; an unknown name or value is refused, naming it."""
    gates = dict(FEATURE_GATES)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if name not in FEATURE_GATES:
            raise click.BadParameter(
                f"unknown feature gate {name!r}; known: {', '.join(sorted(FEATURE_GATES))}"
            )
        if not sep or value.lower() not in ("true", "false"):
            raise click.BadParameter(f"feature gate {name} needs =true or =false, got {item!r}")
        gates[name] = value.lower() == "true"
    return gates


@click.command()
@kubeconfig_option
@context_option
@click.option(
    "--namespace",
    envvar="POD_NAMESPACE",
    default="kruise-rollout",
    show_default=True,
    help="The controller's namespace: the lease, the webhook Service and its Secret [env POD_NAMESPACE].",
)
@click.option(
    "--webhook-mode",
    type=click.Choice(["url", "service"]),
    default="url",
    show_default=True,
    help="url: outside the cluster, webhooks at https://127.0.0.1:PORT; service: in a pod, behind "
    "Service kruise-rollout-webhook-service with the certificate of Secret kruise-rollout-webhook-certs.",
)
@click.option(
    "--bind-address",
    default=None,
    help="Address the webhook and probe servers listen on [default: 127.0.0.1 in url mode, "
    "0.0.0.0 in service mode].",
)
@click.option("--webhook-port", default=9876, show_default=True, help="HTTPS port of the webhooks (0: any).")
@click.option("--service-port", default=443, show_default=True, help="Port of the webhook Service.")
@click.option("--health-port", default=8081, show_default=True, help="Port of /healthz /readyz /metrics.")
@click.option("--cert-dir", default=None, help="Directory for the serving certificate files.")
@click.option(
    "--install/--no-install",
    default=True,
    show_default=True,
    help="The leader points the CRD conversion and webhook configurations at the webhooks.",
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
@click.option(
    "--feature-gates",
    default="",
    help="Kruise Rollout's gates, e.g. AdvancedDeployment=true (the only one graylane acts on).",
)
@click.option("--log-level", default="INFO", show_default=True)
def controller(
    kubeconfig: str | None,
    context: str | None,
    namespace: str,
    webhook_mode: str,
    bind_address: str | None,
    webhook_port: int,
    service_port: int,
    health_port: int,
    cert_dir: str | None,
    install: bool,
    leader_elect: bool,
    identity: str | None,
    rollout_workers: int,
    feature_gates: str,
    log_level: str,
) -> None:
    """Run the controller: Rollout reconciler, webhooks, leader election, health and metrics."""
    from graylane.controller.app import ControllerOptions, WebhookMode, run_controller
    from graylane.kube.logs import setup_logging
    from graylane.runtime.manager import ManagerOptions

    gates = parse_feature_gates(feature_gates)
    setup_logging(log_level)
    ignored = sorted(g for g, on in gates.items() if on and g not in SUPPORTED_GATES)
    if ignored:
        logging.getLogger(__name__).warning("feature gates not implemented by graylane, ignored: %s", ignored)
    # One line per HTTP request drowns the controller's own messages; failures still surface as errors.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    mode = WebhookMode(webhook_mode)
    bind = bind_address or ("0.0.0.0" if mode is WebhookMode.SERVICE else "127.0.0.1")
    manager = ManagerOptions(
        leader_election=leader_elect, lease_namespace=namespace, probe_port=health_port, probe_host=bind
    )
    if identity:
        manager = dataclasses.replace(manager, identity=identity)
    options = ControllerOptions(
        kubeconfig=kubeconfig,
        context=context,
        namespace=namespace,
        webhook_host=bind,
        webhook_port=webhook_port,
        webhook_mode=mode,
        service_port=service_port,
        install=install,
        cert_dir=cert_dir,
        manager=manager,
        rollout_workers=rollout_workers,
        advanced_deployment=gates["AdvancedDeployment"],
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
    from graylane.controller.app import webhook_certs
    from graylane.webhook.install import install as install_webhooks

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
    from graylane.webhook.install import uninstall as uninstall_webhooks

    async def go() -> None:
        async with KubeClient.from_kubeconfig(kubeconfig, context) as client:
            await uninstall_webhooks(client, remove_crds=crds)

    asyncio.run(go())
    click.echo("uninstalled webhooks" + (" and CRDs" if crds else ""))
