"""Click wiring of the Rollout verbs: approve, promote, pause, resume, undo, abort, retry, restart, status,
describe, history and list (kubectl-kruise's `rollout` verbs, plus Argo's promote/abort/retry and a live
status view that can gate CI).

Each command parses its flags, runs one `graylane.cli.ops` operation, and prints one line (or a view).
A wrong name (404), a refused state or a missing permission (403) exits 1 with the reason on stderr;
`status` exits as `kubectl argo rollouts status` does (see its help). Read verbs take `-o json|yaml`.
This module must not talk to the API itself nor decide anything: ops and the pure builders do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import click
import httpx2 as httpx
from lightkube.core.exceptions import ConfigError
from rich.console import Console

from graylane.cli import ops, revisions, tables, view, view_model
from graylane.cli.complete import rollout_names
from graylane.cli.outcome import Outcome
from graylane.cli.patches import Refused
from graylane.kube.client import ApiError, KubeClient
from graylane.planview import PlanError

__all__ = ["COMMANDS", "make_console", "run_op", "target_options"]

T = TypeVar("T")
Op = Callable[[KubeClient, str], Awaitable[T]]


def target_options(*, with_name: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--kubeconfig, --context, -n/--namespace, and the NAME (or rollout/NAME) argument."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if with_name:
            f = click.argument("name", shell_complete=rollout_names)(f)
        f = click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")(f)
        f = click.option("--context", default=None, help="The kubeconfig context to use.")(f)
        return click.option("--kubeconfig", default=None, help="Path to a kubeconfig (default: as kubectl).")(
            f
        )

    return decorate


def _api_message(err: ApiError, namespace: str) -> str:
    if err.not_found:
        return f"{err.message or 'not found'} (namespace {namespace!r})"
    if err.code == 403:
        return f"forbidden: {err.message}"
    if err.conflict:
        return f"the object kept changing while it was being updated, try again: {err.message}"
    return f"{err.code} {err.reason}: {err.message}"


def _client(kubeconfig: str | None, context: str | None) -> KubeClient:
    try:
        return KubeClient.from_kubeconfig(kubeconfig, context)
    except (ConfigError, OSError, ValueError) as err:
        raise click.ClickException(f"cannot load the kubeconfig: {err}") from err


def run_op(
    kubeconfig: str | None, context: str | None, namespace: str | None, op: Op[T], *, writes: bool = False
) -> T:
    """Run one async operation with a fresh client; turn every expected failure into exit code 1.
    `writes`: the operation changes objects, signed with the user's name (ops.sign_writes)."""
    ns = namespace or ""

    async def go() -> T:
        nonlocal ns
        async with _client(kubeconfig, context) as client:
            ns = namespace or client.namespace
            if writes:
                await ops.sign_writes(client)
            return await op(client, ns)

    try:
        return asyncio.run(go())
    except (Refused, PlanError) as err:
        raise click.ClickException(str(err)) from err
    except ApiError as err:
        raise click.ClickException(_api_message(err, ns)) from err
    except TimeoutError as err:
        raise click.ClickException(str(err) or "timed out") from err
    except httpx.HTTPError as err:
        raise click.ClickException(f"cannot reach the API server: {err}") from err


def _name(arg: str) -> str:
    try:
        return ops.parse_name(arg)
    except Refused as err:
        raise click.ClickException(str(err)) from err


def make_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- write verbs -------------------------------------------------------------------------------------


@click.command()
@target_options()
def approve(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Let a Rollout waiting for approval go on (StepPaused -> StepReady), as kubectl-kruise does."""
    rollout = _name(name)
    click.echo(run_op(kubeconfig, context, namespace, lambda c, ns: ops.approve(c, ns, rollout), writes=True))


@click.command()
@target_options()
@click.option("--full", is_flag=True, help="Skip every remaining step: jump to the last and approve it.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="With --full: seconds to wait for the steps to complete.",
)
def promote(
    kubeconfig: str | None, context: str | None, namespace: str | None, name: str, full: bool, timeout: float
) -> None:
    """Go on past the current pause (as approve); --full skips every remaining step and waits for the end.

    --full writes the two moves Kruise knows: a step jump to the last step (status nextStepIndex), then the
    approval of that step's pause, and returns once all steps are done (exit 1 after --timeout).
    """
    rollout = _name(name)
    if not full:
        click.echo(
            run_op(kubeconfig, context, namespace, lambda c, ns: ops.approve(c, ns, rollout), writes=True)
        )
        return
    said = run_op(
        kubeconfig,
        context,
        namespace,
        lambda c, ns: ops.promote_full(c, ns, rollout, timeout=timeout, say=click.echo),
        writes=True,
    )
    click.echo(said)


@click.command()
@target_options()
def pause(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Hold the release where it is (spec.strategy.paused=true); pods of the current step still come up."""
    rollout = _name(name)
    click.echo(run_op(kubeconfig, context, namespace, lambda c, ns: ops.pause(c, ns, rollout), writes=True))


@click.command()
@target_options()
def resume(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Let a paused release go on (spec.strategy.paused=false)."""
    rollout = _name(name)
    click.echo(run_op(kubeconfig, context, namespace, lambda c, ns: ops.resume(c, ns, rollout), writes=True))


@click.command()
@target_options()
@click.option(
    "--fast", is_flag=True, help="Blue-green: jump back to the latest earlier step without traffic."
)
@click.option(
    "--to-revision", default=0, type=click.IntRange(min=0), help="Outside a release: this revision."
)
def undo(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    name: str,
    fast: bool,
    to_revision: int,
) -> None:
    """Roll the workload back: during a release to its stable revision (the release is cancelled),
    otherwise to the previous revision (which the Rollout then releases through its steps)."""
    rollout = _name(name)
    click.echo(
        run_op(
            kubeconfig,
            context,
            namespace,
            lambda c, ns: ops.undo(c, ns, rollout, fast=fast, to_revision=to_revision),
            writes=True,
        )
    )


@click.command()
@target_options()
def abort(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Stop the release and go back to stable (undo), remembering it so `retry` can start it again."""
    rollout = _name(name)
    click.echo(run_op(kubeconfig, context, namespace, lambda c, ns: ops.abort(c, ns, rollout), writes=True))


@click.command()
@target_options()
def retry(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Start a release stopped by `abort` again, from step 1."""
    rollout = _name(name)
    click.echo(run_op(kubeconfig, context, namespace, lambda c, ns: ops.retry(c, ns, rollout), writes=True))


@click.command()
@target_options()
def restart(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> None:
    """Replace the workload's pods (kubectl restartedAt stamp); under a Rollout this releases by steps."""
    rollout = _name(name)
    click.echo(
        run_op(kubeconfig, context, namespace, lambda c, ns: ops.restart(c, ns, rollout, _now()), writes=True)
    )


# -- read verbs --------------------------------------------------------------------------------------

_output = click.option(
    "-o", "--output", type=click.Choice(["json", "yaml"]), default=None, help="Print data."
)


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, as a number or with a unit: 90, 90s, 5m, 1h (kubectl's --timeout)."""

    name = "duration"
    UNITS: ClassVar[dict[str, float]] = {"s": 1, "m": 60, "h": 3600}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip()
        scale = self.UNITS.get(text[-1:], 0) if text else 0
        try:
            seconds = float(text[:-1] if scale else text) * (scale or 1)
        except ValueError:
            self.fail(f"{value!r} is not a duration: use e.g. 90, 90s, 5m or 1h", param, ctx)
        if seconds < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return seconds


def _fetcher(client: KubeClient, ns: str, name: str) -> view.Fetch:
    async def fetch() -> view_model.StatusView:
        return view_model.build_view(await ops.gather_status(client, ns, name), _now())

    return fetch


def _exit_for(final: view_model.StatusView, *, waited: bool, timeout: float) -> None:
    """Exit 0 only for Healthy after a wait (or anything but Cancelled/Degraded without one)."""
    outcome = Outcome(final.outcome)
    if outcome.exit_code:
        click.echo(f"Error: the release is {outcome}: {final.outcome_why}", err=True)
        raise click.exceptions.Exit(1)
    if waited and outcome is not Outcome.HEALTHY:
        click.echo(
            f"Error: rollout status watch exceeded timeout ({timeout:g}s): {outcome} - {final.outcome_why}",
            err=True,
        )
        raise click.exceptions.Exit(1)


@click.command()
@target_options()
@click.option(
    "-w",
    "--watch",
    "watching",
    is_flag=True,
    help="Keep redrawing (one line per change when piped) until interrupted or --timeout.",
)
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls while waiting.")
@click.option(
    "-t",
    "--timeout",
    type=Duration(),
    default=0.0,
    help="Wait at most this long (90, 90s, 5m; implies --watch); 0: no limit.",
)
@_output
def status(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    name: str,
    watching: bool,
    interval: float,
    timeout: float,
    output: str | None,
) -> None:
    """The release at a glance; with --timeout, wait for its end and exit 0 only if Healthy.

    Shows the steps, pods, the traffic the routing objects route now (read back from them) next to what
    the step asks for, what it waits for, conditions and recent Events. --watch alone redraws until
    interrupted; --timeout T (with or without --watch) waits for the end of the release. Exit codes, as
    `kubectl argo rollouts status`: 0 Healthy (no release running, the last one succeeded and every pod
    runs the latest template); 1 Cancelled (rolled back) or Degraded (disabled, terminating), at once; 1
    when --timeout passes first (Progressing, Paused or Blocked); 1 for a wrong name or no permission.
    """
    rollout, console = _name(name), make_console()
    waiting = timeout > 0  # a gate: stop at the end of the release, or fail at the timeout

    async def show(client: KubeClient, ns: str) -> view_model.StatusView:
        fetch = _fetcher(client, ns, rollout)
        if (watching or waiting) and not output:
            return await view.watch(fetch, console, interval=interval, timeout=timeout, until_end=waiting)
        if waiting:
            final = await view.watch(fetch, Console(file=io.StringIO()), interval=interval, timeout=timeout)
        else:
            final = await fetch()
        if output:
            click.echo(view.dump(final, output))
        else:
            console.print(view.render_status(final))
        return final

    try:
        final = run_op(kubeconfig, context, namespace, show)
    except KeyboardInterrupt:  # the way out of a live view
        raise click.exceptions.Exit(0 if watching and not waiting else 130) from None
    _exit_for(final, waited=waiting, timeout=timeout)


@click.command()
@target_options()
@click.option("--all", "all_pods", is_flag=True, help="List every pod, not only the new ones.")
@_output
def describe(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    name: str,
    all_pods: bool,
    output: str | None,
) -> None:
    """Everything about a Rollout once: the status view plus images, revisions and new pods with batch ids."""
    rollout, console = _name(name), make_console()

    async def show(client: KubeClient, ns: str) -> None:
        data = await _fetcher(client, ns, rollout)()
        if output:
            click.echo(view.dump(data, output))
        else:
            console.print(view.render_status(data, describe=True, all_pods=all_pods))

    run_op(kubeconfig, context, namespace, show)


@click.command()
@target_options()
@_output
def history(
    kubeconfig: str | None, context: str | None, namespace: str | None, name: str, output: str | None
) -> None:
    """Past revisions of the workload (its ReplicaSets or ControllerRevisions): revision, hash, images."""
    rollout = _name(name)

    async def rows(client: KubeClient, ns: str) -> list[tables.HistoryRow]:
        h = await ops.gather_history(client, ns, rollout)
        if h.workload.get("kind") != "Deployment":  # its ControllerRevisions
            return revisions.revision_rows(h.workload, h.revisions, h.pods, h.rollout, _now())
        return tables.history_rows(h.workload, h.owned, h.canary, h.rollout, _now())

    found = run_op(kubeconfig, context, namespace, rows)
    if output:
        click.echo(view.dump(found, output))
    else:
        make_console().print(view.render_history(found))


@click.command("list")
@target_options(with_name=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Rollouts of every namespace.")
@_output
def list_(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool,
    output: str | None,
) -> None:
    """Rollouts of a namespace: NAME STATUS STEP STATE MESSAGE AGE."""

    async def rows(client: KubeClient, ns: str) -> list[list[str]]:
        items = await ops.list_rollouts(client, None if all_namespaces else ns)
        return tables.list_rows(items, _now(), all_namespaces=all_namespaces)

    found = run_op(kubeconfig, context, namespace, rows)
    header = ("NAME", "STATUS", "STEP", "STATE", "MESSAGE", "AGE")
    if output:
        keys = [h.lower() for h in (("NAMESPACE", *header) if all_namespaces else header)]
        click.echo(view.dump_data([dict(zip(keys, row, strict=True)) for row in found], output))
        return
    if not found:
        click.echo("No rollouts found.", err=True)
        return
    make_console().print(view.render_rows(("NAMESPACE", *header) if all_namespaces else header, found))


COMMANDS = (approve, promote, pause, resume, undo, abort, retry, restart, status, describe, history, list_)
