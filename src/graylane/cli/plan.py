"""`graylane plan FILE|NAME`: refuse what the API server would refuse, then show what each Rollout will do.

FILE is YAML (`-` reads standard input) with any number of documents: every Rollout in it (v1alpha1 or
v1beta1) is checked as a `kubectl apply` of it would be (the CRD schema's types first, then the
validating webhook's rules, calling the same `validate_rollout` the webhook serves, with the file's other
Rollouts of the namespace as siblings), and planned for its workload's replicas: from a Deployment in the
file, else `--replicas`, else read from the cluster (then the webhook's view is complete: the live Rollout
is the old object of an update and the namespace's Rollouts are siblings). NAME plans a Rollout as stored.

Every refusal is one line per Rollout naming the field, never a traceback. Click wiring and layout only:
the plan comes from the pure `graylane.planview`, cluster reads go through `graylane.cli.ops`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError
from rich.console import Group, RenderableType
from rich.text import Text

from graylane.api import keys
from graylane.api.conversion import convert
from graylane.api.rollout_v1beta1 import Rollout
from graylane.cli import ops, view
from graylane.cli.patches import Refused
from graylane.cli.rollouts import make_console, run_op, target_options
from graylane.kube import resources as r
from graylane.kube.client import KubeClient
from graylane.planview import PlanError, PlannedStep, PlanView, plan_rollout, replicas_of
from graylane.webhook.validation import ValidationOptions, render_errors, validate_rollout

__all__ = ["plan", "render_plan", "schema_error"]

Raw = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Input:
    """One Rollout of FILE: as written, and its namespace ("" when neither the file nor -n says)."""

    raw: Raw
    namespace: str

    @property
    def name(self) -> str:
        return str((self.raw.get("metadata") or {}).get("name") or "")

    @property
    def label(self) -> str:
        return f"rollout {self.namespace + '/' if self.namespace else ''}{self.name or '<no name>'}"


# -- reading and checking --------------------------------------------------------------------------


def _documents(text: str) -> list[Raw]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()
        raise click.ClickException(f"not valid YAML: {' '.join(s.strip() for s in first[:3])}") from err
    return [d for d in docs if isinstance(d, Mapping)]


def _is_rollout(doc: Raw) -> bool:
    return doc.get("kind") == "Rollout" and doc.get("apiVersion") in (keys.V1ALPHA1, keys.V1BETA1)


def _loc(loc: Sequence[int | str], raw: Any) -> str:
    """`spec.strategy.canary.steps[0].replicas`: pydantic's location cut where the document ends (the rest
    names union members such as `int`)."""
    out, here = "", raw
    for part in loc:
        if isinstance(part, int) and isinstance(here, list) and part < len(here):
            out, here = f"{out}[{part}]", here[part]
        elif isinstance(part, str) and isinstance(here, Mapping) and part in here:
            out, here = f"{out}.{part}" if out else part, here[part]
        else:
            break
    return out or "(document)"


def schema_error(raw: Raw) -> str | None:
    """The first type error the CRD schema would report for this Rollout, on one line; None if none."""
    try:
        model_input = convert(dict(raw), keys.V1BETA1) if raw.get("apiVersion") == keys.V1ALPHA1 else raw
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        return f"cannot be read as a v1alpha1 Rollout: {err}"
    try:
        Rollout.from_obj(dict(model_input))
    except ValidationError as err:
        first = err.errors()[0]
        where = _loc(first["loc"], model_input)
        value = repr(first.get("input"))[:60]
        return f"{where}: {first['msg']} (got {value})"
    except (ValueError, TypeError) as err:
        return str(err).splitlines()[0]
    return None


def _siblings(item: Input, others: Sequence[Raw]) -> list[Raw]:
    return [o for o in others if o is not item.raw]


def refusals(items: Sequence[Input], cluster: Mapping[str, tuple[Raw | None, list[Raw]]]) -> list[str]:
    """One line per Rollout the API server would refuse: schema types first, then the webhook's rules.

    `cluster[label]` is (the live Rollout, the namespace's Rollouts) when they were read, for UPDATE rules
    and conflicts; otherwise the file's Rollouts of the same namespace are the siblings (a CREATE).
    """
    lines = []
    for item in items:
        error = schema_error(item.raw)
        if error is not None:
            lines.append(f"{item.label}: {error}")
            continue
        same_ns = [i.raw for i in items if i.namespace == item.namespace]
        old, live = cluster.get(item.label, (None, []))
        siblings = _siblings(item, [*same_ns, *live])
        errors = validate_rollout(item.raw, old, siblings, ValidationOptions())
        if errors:
            lines.append(f"{item.label}: {render_errors(errors)}")
    return lines


def _model(item: Input) -> Rollout:
    raw = dict(item.raw)
    if raw.get("apiVersion") == keys.V1ALPHA1:
        raw = convert(raw, keys.V1BETA1)
    metadata = {**(raw.get("metadata") or {}), "namespace": item.namespace}
    return Rollout.from_obj({**raw, "metadata": metadata})


# -- the command -------------------------------------------------------------------------------------


def _read(target: str) -> str | None:
    if target == "-":
        return sys.stdin.read()
    path = Path(target)
    return path.read_text() if path.is_file() else None


def _name(target: str) -> str:
    try:
        return ops.parse_name(target)
    except Refused as err:
        raise click.ClickException(str(err)) from err


@dataclasses.dataclass
class _ClusterView:
    replicas: dict[str, int]
    webhook: dict[str, tuple[Raw | None, list[Raw]]]


async def _read_cluster(client: KubeClient, default_ns: str, items: Sequence[Input]) -> _ClusterView:
    """For Rollouts whose workload the file lacks: its replicas, the live Rollout and its namespace's."""
    seen = _ClusterView({}, {})
    for item in items:
        namespace = item.namespace or default_ns
        model = _model(dataclasses.replace(item, namespace=namespace))
        seen.replicas[item.label] = await ops.workload_replicas(client, namespace, model)
        old = await client.get_or_none(r.ROLLOUT, item.name, namespace) if item.name else None
        listed = await client.list(r.ROLLOUT, namespace)
        seen.webhook[item.label] = (old, list(listed.get("items") or []))
    return seen


def _from_file(
    text: str, replicas: int | None, namespace: str | None, connect: tuple[str | None, str | None]
) -> list[PlanView]:
    docs = _documents(text)
    items = [
        Input(d, str((d.get("metadata") or {}).get("namespace") or namespace or ""))
        for d in docs
        if _is_rollout(d)
    ]
    if not items:
        raise click.ClickException("no Rollout (rollouts.kruise.io/v1alpha1 or v1beta1) in the file")
    refused = refusals(items, {})
    if refused:
        raise click.ClickException("refused, as the API server would:\n" + "\n".join(refused))
    found = {i.label: replicas if replicas is not None else replicas_of(docs, _model(i)) for i in items}
    missing = [i for i in items if found[i.label] is None]
    if missing:
        try:
            seen = run_op(*connect, namespace, lambda c, ns: _read_cluster(c, ns, missing))
        except click.ClickException as err:
            names = ", ".join(i.label for i in missing)
            raise click.ClickException(
                f"the workload's replica count is unknown for {names}: add its Deployment to FILE, pass "
                f"--replicas N, or give a cluster to read it from ({err.message})"
            ) from err
        refused = refusals(missing, seen.webhook)
        if refused:
            raise click.ClickException("refused, as the API server would:\n" + "\n".join(refused))
        found.update(seen.replicas)
    return [_plan(_model(i), found[i.label]) for i in items]


def _plan(rollout: Rollout, replicas: int | None) -> PlanView:
    if replicas is None:
        raise click.ClickException(
            "the workload's replica count is unknown: add its Deployment to FILE or pass --replicas N"
        )
    try:
        return plan_rollout(rollout, replicas)
    except PlanError as err:
        raise click.ClickException(f"rollout {rollout.metadata.get('name', '')}: {err}") from err


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
    """Validate Rollouts as the API server and webhook do, then show per step: pods of each version,
    the traffic objects as they will be written, pauses, the analysis gates, and what undo does.

    FILE may hold several Rollouts and their Deployments; a Rollout whose Deployment is not in FILE is
    planned for the Deployment in the cluster. Exits 1 with one line per refused Rollout.
    """
    text = _read(target)
    if text is not None:
        results = _from_file(text, replicas, namespace, (kubeconfig, context))
    else:
        name = _name(target)

        async def load(client: KubeClient, ns: str) -> PlanView:
            rollout, found = await ops.plan_input(client, ns, name)
            return _plan(rollout, replicas if replicas is not None else found)

        results = [run_op(kubeconfig, context, namespace, load)]
    _show(results, output)


# -- layout ------------------------------------------------------------------------------------------


def _step_lines(step: PlannedStep) -> list[RenderableType]:
    lines: list[RenderableType] = [
        Text(
            f"Step {step.index}: {step.stable_pods} stable + {step.canary_pods} canary pods, "
            f"traffic {step.traffic or '-'}, pause: {step.pause}"
            + (f", gate: {step.gate}" if step.gate != "-" else ""),
            style="bold",
        )
    ]
    lines += [Text(f"  - {o}") for o in step.objects]
    lines += [Text(f"  - [traffic] {o}", style="yellow") for o in step.traffic_objects]
    lines.append(Text(f"  undo here: {step.undo}", style="cyan"))
    return lines


def render_plan(p: PlanView) -> RenderableType:
    title = Text.assemble(
        ("Plan ", "bold"),
        f"rollout {p.name}: {p.workload}, {p.replicas} replicas, {p.style} style",
    )
    header = ("STEP", "REPLICAS", "STABLE", "CANARY", "TOTAL", "TRAFFIC", "MATCHES", "PAUSE", "GATE")
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
            s.gate,
        ]
        for s in p.steps
    ]
    parts: list[RenderableType] = [title, view.render_rows(header, rows), Text("")]
    for step in p.steps:
        parts += _step_lines(step)
    parts.append(Text(f"After the last step: {p.completion}", style="bold"))
    if p.traffic_routings:
        parts.append(Text(f"Traffic routings: {'; '.join(p.traffic_routings)}", style="yellow"))
    parts += [Text(f"Gate: {g}", style="magenta") for g in p.gates]
    parts += [Text(f"Note: {n}", style="yellow") for n in p.notes]
    return Group(*parts)


def _show(results: list[PlanView], output: str | None) -> None:
    if output:
        click.echo(view.dump(results[0] if len(results) == 1 else results, output))
        return
    console = make_console()
    for i, result in enumerate(results):
        if i:
            console.print(Text(""))
        console.print(render_plan(result))
