"""`graylane plan FILE|NAME`: what a Rollout will do at each step, before anything is released.

Click wiring and layout only: the plan itself comes from the pure `graylane.planview`, and from a
cluster through `graylane.cli.ops`. FILE is YAML (several documents allowed: the Rollout, v1alpha1
or v1beta1, and optionally its Deployment for the replica count); `-` reads standard input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml
from rich.console import Group, RenderableType
from rich.text import Text

from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli import ops, view
from graylane.cli.patches import Refused
from graylane.cli.rollouts import make_console, run_op, target_options
from graylane.kube.client import KubeClient
from graylane.planview import (
    PlanError,
    PlannedStep,
    PlanView,
    plan_rollout,
    rollout_from_documents,
)

__all__ = ["plan"]


def _from_file(text: str, replicas: int | None) -> PlanView:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise click.ClickException(f"not valid YAML: {err}") from err
    try:
        rollout, found = rollout_from_documents(docs)
        return _plan(rollout, replicas if replicas is not None else found)
    except PlanError as err:
        raise click.ClickException(str(err)) from err


def _plan(rollout: Rollout, replicas: int | None) -> PlanView:
    if replicas is None:
        raise PlanError(
            "the workload's replica count is unknown: add its Deployment to FILE or pass --replicas N"
        )
    return plan_rollout(rollout, replicas)


def _name(target: str) -> str:
    try:
        return ops.parse_name(target)
    except Refused as err:
        raise click.ClickException(str(err)) from err


def _read(target: str) -> str | None:
    if target == "-":
        return sys.stdin.read()
    path = Path(target)
    return path.read_text() if path.is_file() else None


def _step_lines(step: PlannedStep) -> list[RenderableType]:
    lines: list[RenderableType] = [
        Text(
            f"Step {step.index}: {step.stable_pods} stable + {step.canary_pods} canary pods, "
            f"traffic {step.traffic or '-'}, pause: {step.pause}",
            style="bold",
        )
    ]
    lines += [Text(f"  - {o}") for o in step.objects]
    lines += [Text(f"  - [traffic, not applied] {o}", style="yellow") for o in step.traffic_objects]
    lines.append(Text(f"  undo here: {step.undo}", style="cyan"))
    return lines


def render_plan(p: PlanView) -> RenderableType:
    title = Text.assemble(
        ("Plan ", "bold"),
        f"rollout {p.name}: {p.workload}, {p.replicas} replicas, {p.style} style",
    )
    header = ("STEP", "REPLICAS", "STABLE", "CANARY", "TOTAL", "TRAFFIC", "MATCHES", "PAUSE")
    rows = [
        [
            str(s.index),
            s.replicas,
            str(s.stable_pods),
            str(s.canary_pods),
            str(s.stable_pods + s.canary_pods),
            s.traffic or "-",
            " OR ".join(s.matches) or "-",
            s.pause,
        ]
        for s in p.steps
    ]
    parts: list[RenderableType] = [title, view.render_rows(header, rows), Text("")]
    for step in p.steps:
        parts += _step_lines(step)
    parts.append(Text(f"After the last step: {p.completion}", style="bold"))
    if p.traffic_routings:
        parts.append(Text(f"Traffic routings: {'; '.join(p.traffic_routings)}", style="yellow"))
    parts += [Text(f"Note: {n}", style="yellow") for n in p.notes]
    return Group(*parts)


@click.command()
@target_options(with_name=False)
@click.argument("target", metavar="FILE|NAME")
@click.option("--replicas", type=click.IntRange(min=0), default=None, help="Workload replicas to plan for.")
@click.option(
    "-o", "--output", type=click.Choice(["json", "yaml"]), default=None, help="Print the plan data."
)
def plan(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    target: str,
    replicas: int | None,
    output: str | None,
) -> None:
    """Per step: pods of each version, traffic and matches, objects touched, pause, what undo does."""
    text = _read(target)
    if text is not None:
        result = _from_file(text, replicas)
    else:
        name = _name(target)

        async def load(client: KubeClient, ns: str) -> PlanView:
            rollout, found = await ops.plan_input(client, ns, name)
            return _plan(rollout, replicas if replicas is not None else found)

        result = run_op(kubeconfig, context, namespace, load)
    _show(result, output)


def _show(result: PlanView, output: str | None) -> None:
    if output:
        click.echo(view.dump(result, output))
    else:
        make_console().print(render_plan(result))
