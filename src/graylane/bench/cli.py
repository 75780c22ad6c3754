"""`graylane bench`: a reproducible benchmark of the controller on a fresh local cluster (click wiring).

The run: a fresh cluster of its own (deleted at the end, whatever happens), the controller as a
separate process, one of the two modes (release.py, rest.py), then the results as rich tables and as
JSON (`--out`, and always `results.json` in the run directory, next to the controller's log).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from graylane.bench import machine, results
from graylane.bench.cluster import nodes_for
from graylane.bench.logscan import summarise_log
from graylane.bench.profile import find_py_spy
from graylane.bench.release import ReleaseOptions, run_release
from graylane.bench.report import print_report
from graylane.bench.rest import RestOptions, run_rest
from graylane.bench.session import BenchSession, SessionOptions
from graylane.bench.workload import Style
from graylane.cluster import build

__all__ = ["bench"]

DEFAULT_ROLLOUTS = {"release": 1000, "rest": 10000}


@click.command()
@click.option("--mode", type=click.Choice(["release", "rest"]), default="release", show_default=True)
@click.option(
    "-n", "--rollouts", type=click.IntRange(1), default=None, help="[default: 1000 release, 10000 rest]"
)
@click.option(
    "--per-namespace",
    type=click.IntRange(1),
    default=None,
    help="Apps per namespace. [default: 1 release, 10 rest]",
)
@click.option("--replicas", type=click.IntRange(1), default=3, show_default=True, help="Release mode only.")
@click.option("--style", type=click.Choice([s.value for s in Style]), default="canary", show_default=True)
@click.option(
    "--soak", type=click.FloatRange(0), default=600.0, show_default=True, help="Rest mode idle soak (s)."
)
@click.option(
    "--restart/--no-restart", default=True, show_default=True, help="Rest mode: cold-start before the soak."
)
@click.option(
    "--idle", type=click.FloatRange(0), default=60.0, show_default=True, help="Release mode idle (s)."
)
@click.option("--concurrency", type=click.IntRange(1), default=32, show_default=True, help="Parallel writes.")
@click.option("--phase-timeout", type=click.FloatRange(1), default=1800.0, show_default=True)
@click.option(
    "--audit/--no-audit", default=True, show_default=True, help="API server audit log (request counts)."
)
@click.option("--rollout-workers", type=click.IntRange(1), default=None, help="Passed to the controller.")
@click.option(
    "--leader-elect/--no-leader-elect", default=True, show_default=True, help="Passed to the controller."
)
@click.option(
    "--control-plane-qps",
    type=click.IntRange(1),
    default=None,
    help="Client QPS of the controller-manager and scheduler (burst 2x). [default: Kubernetes' own]",
)
@click.option(
    "--profile/--no-profile",
    default=False,
    show_default=True,
    help="py-spy the controller during the release (rest mode: the creation); profile.txt in the run dir.",
)
@click.option(
    "--keep-audit/--no-keep-audit",
    default=False,
    show_default=True,
    help="Copy the API server's audit log into the run directory before the cluster is deleted.",
)
@click.option("--cluster-name", default="graylane-bench", show_default=True)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the JSON here."
)
def bench(
    mode: str,
    rollouts: int | None,
    per_namespace: int | None,
    replicas: int,
    style: str,
    soak: float,
    restart: bool,
    idle: float,
    concurrency: int,
    phase_timeout: float,
    audit: bool,
    rollout_workers: int | None,
    leader_elect: bool,
    control_plane_qps: int | None,
    profile: bool,
    keep_audit: bool,
    cluster_name: str,
    run_dir: Path | None,
    out: Path | None,
) -> None:
    """Benchmark the controller: latency, memory, CPU and API requests for N Rollouts on a fresh cluster."""
    py_spy = find_py_spy() if profile else None
    if profile and py_spy is None:
        raise click.UsageError("--profile needs py-spy (pip install py-spy) next to python or on PATH")
    count = rollouts or DEFAULT_ROLLOUTS[mode]
    per_ns = per_namespace or (1 if mode == "release" else 10)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = run_dir or build.cache_root() / "bench" / f"{stamp}-{mode}-{count}"
    nodes = nodes_for(count, replicas) if mode == "release" else 1
    params: dict[str, Any] = {
        "mode": mode,
        "rollouts": count,
        "per_namespace": per_ns,
        "replicas": replicas if mode == "release" else 0,
        "style": style,
        "nodes": nodes,
        "soak_s": soak if mode == "rest" else None,
        "restart": restart if mode == "rest" else None,
        "idle_s": idle if mode == "release" else None,
        "concurrency": concurrency,
        "rollout_workers": rollout_workers,
        "leader_elect": leader_elect,
        "control_plane_qps": control_plane_qps,
        "profile": profile,
        "started_at": stamp,
        "run_dir": str(run_dir),
    }
    err = Console(stderr=True)
    session_options = SessionOptions(
        cluster_name=cluster_name,
        nodes=nodes,
        run_dir=run_dir,
        audit_log=audit,
        concurrency=concurrency,
        rollout_workers=rollout_workers,
        leader_elect=leader_elect,
        control_plane_qps=control_plane_qps,
        py_spy=py_spy,
        keep_audit=keep_audit,
    )
    started = {"params": params, "machine": machine.describe()}
    doc = asyncio.run(
        _run(session_options, started, phase_timeout, lambda line: err.print(f"[dim]bench[/] {line}"))
    )
    text = json.dumps(doc, indent=2, default=str)
    (run_dir / "results.json").write_text(text)
    if out is not None:
        out.write_text(text)
    console = Console()
    print_report(doc, console if console.is_terminal else Console(width=150))
    click.echo(f"results: {out or run_dir / 'results.json'}; controller log: {run_dir / 'controller.log'}")
    if not doc["outcome"].get("completed"):
        sys.exit(1)


async def _run(
    options: SessionOptions, started: dict[str, Any], phase_timeout: float, say: Any
) -> dict[str, Any]:
    params = started["params"]
    count, style = int(params["rollouts"]), Style(params["style"])
    async with BenchSession.open(options, say) as session:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # stop waiting, then report and clean up as usual
            loop.add_signal_handler(sig, session.interrupted.set)
        if params["mode"] == "release":
            release = ReleaseOptions(
                count=count,
                per_namespace=int(params["per_namespace"]),
                replicas=int(params["replicas"]),
                style=style,
                phase_timeout=phase_timeout,
                idle=float(params["idle_s"]),
            )
            outcome = await run_release(session, release, say)
            await session.mark("end")
            await session.stop_controller()
            doc = results.release_results(session, outcome, count)
        else:
            rest = RestOptions(
                count=count,
                per_namespace=int(params["per_namespace"]),
                soak=float(params["soak_s"]),
                restart=bool(params["restart"]),
                phase_timeout=phase_timeout,
            )
            outcome = await run_rest(session, rest, say)
            await session.mark("end")
            await session.stop_controller()
            doc = results.rest_results(session, outcome, count, "soak")
        doc = started | doc
        doc["machine"]["loadavg_at_end"] = os.getloadavg()
        doc["cluster"] = {"kubernetes": await _server_version(session)}
        results.finish(doc, session)
    log_path = options.run_dir / "controller.log"
    doc["controller_log"] = summarise_log(log_path.read_text(errors="replace").splitlines()) | {
        "path": str(log_path)
    }
    return doc


async def _server_version(session: BenchSession) -> str:
    info = await session.kube.request("GET", "/version", resource="version")
    return str(info.get("gitVersion")) if isinstance(info, dict) else "unknown"
