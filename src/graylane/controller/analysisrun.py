"""The AnalysisRun controller: measures every run on schedule and stores each measurement and the verdict.

On the one reconcile runtime (runtime/loop.py), as every controller:
- `observe` asks the pure planner (`graylane.analysis.planner.plan_run`) which measurements are due now,
  takes them through the metric provider (Prometheus queries, concurrently, each bounded by its timeout:
  asynchronous I/O, so the event loop is never held), reads the Secrets that template arguments name
  (values go into the queries only, never into status), and returns the frozen input;
- `plan`, in the runtime's worker thread (a judge look is up to ~100 ms of arithmetic), folds the
  outcomes into measurements and the verdict, and says when the next measurement falls due;
- the loop stores the status guarded by the version the outcomes were measured on (a conflict discards
  them: the next pass measures again), then the actions: Events on the run (Argo's reasons) and the
  verdict counter.
A completed run is never looked at again. Runs are created by the Rollout controller
(planner/analysis.py), owned by their Rollout and garbage-collected with it.

What it must not do: decide anything `plan_run` decides, or write anything but the run's status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping

from graylane.analysis.contract import MetricProvider, Outcome
from graylane.analysis.planner import RunEvent, plan_run
from graylane.api.analysis import AnalysisPhase, AnalysisRun
from graylane.kube import resources as r
from graylane.kube.client import ApiError, KubeClient, Obj
from graylane.kube.events import EventKind, EventRecorder
from graylane.kube.informer import Informer
from graylane.runtime.cache import parse_cached
from graylane.runtime.loop import Decision
from graylane.runtime.manager import Manager
from graylane.runtime.writer import Writer
from graylane.telemetry.analysis import AnalysisMetrics, run_kind

__all__ = ["AnalysisRunReconciler", "RunInput", "Verdict"]

log = logging.getLogger(__name__)
SECRET = r.Resource("", "v1", "secrets", "Secret")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class RunInput:
    obj: Obj  # the cached run (shared: never mutated)
    run: AnalysisRun
    outcomes: tuple[Outcome, ...]
    now: dt.datetime
    secrets: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The run ended in this pass: count it."""

    phase: str


Action = RunEvent | Verdict


class AnalysisRunReconciler:
    name = "analysisrun"
    primary = r.ANALYSIS_RUN
    # status.message is the verdict's reason: a refused write is reported by Event only.
    status_message = False

    def __init__(
        self,
        provider: MetricProvider,
        *,
        workers: int = 4,
        clock: Callable[[], dt.datetime] = _utcnow,
        metrics: AnalysisMetrics | None = None,
    ) -> None:
        self.workers = workers
        self._provider = provider
        self._clock = clock
        self._metrics = metrics
        self._client: KubeClient | None = None
        self._recorder: EventRecorder | None = None

    def setup(self, manager: Manager) -> Informer:
        self._client = manager.client
        self._recorder = manager.recorder
        return manager.watch(self, r.ANALYSIS_RUN)

    async def observe(self, obj: Obj) -> RunInput | None:
        run = parse_cached(obj, AnalysisRun)
        if run is None or _completed(run.status.phase):
            return None
        secrets, problem = await self._secrets(run)
        now = self._clock()
        due = plan_run(run, [], now, secrets).requests
        if problem:
            outcomes = tuple(Outcome(request, now, now, error=problem) for request in due)
        else:
            outcomes = tuple(await asyncio.gather(*(self._provider.measure(req) for req in due)))
        # Scheduling continues from when the measurements finished, not from when they were asked for.
        return RunInput(obj, run, outcomes, self._clock() if due else now, secrets)

    def plan(self, inp: RunInput) -> Decision[Action]:
        """Pure (the judge's arithmetic included): the new status, its Events, the next wake-up."""
        plan = plan_run(inp.run, inp.outcomes, inp.now, inp.secrets)
        stored = inp.run.status.to_obj()
        status = plan.status.to_obj()
        actions: list[Action] = list(plan.events)
        if _completed(plan.status.phase) and not _completed(inp.run.status.phase):
            actions.append(Verdict(plan.status.phase))
        return Decision(
            status=status if status != stored else None,
            actions=tuple(actions),
            requeue_after=plan.requeue_after,
        )

    async def act(self, action: Action, inp: RunInput, writer: Writer) -> None:
        if isinstance(action, Verdict):
            if self._metrics is not None:
                namespace = str(inp.obj["metadata"].get("namespace", ""))
                self._metrics.verdicts.labels(namespace, action.phase, run_kind(inp.obj)).inc()
            log.info(
                "analysis run ended",
                extra={"run": inp.obj["metadata"].get("name"), "phase": action.phase},
            )
            return
        if self._recorder is not None:
            kind = EventKind.WARNING if action.type == "Warning" else EventKind.NORMAL
            await self._recorder.event(inp.obj, kind, action.reason, action.message)

    async def _secrets(self, run: AnalysisRun) -> tuple[dict[str, str], str]:
        """Argument name -> value of every argument a Secret holds, or why one cannot be read."""
        namespace = str(run.metadata.get("namespace") or "")
        values: dict[str, str] = {}
        for arg in run.spec.args:
            ref = arg.value_from.secret_key_ref if arg.value_from is not None else None
            if ref is None:
                continue
            where = f"Secret {namespace}/{ref.name} key {ref.key!r} (argument {arg.name!r})"
            assert self._client is not None
            try:
                secret = await self._client.get(SECRET, ref.name, namespace)
            except ApiError as err:
                hint = (
                    " (grant graylane get on Secrets: the chart's rollout.analysisSecretArgs)"
                    if err.code == 403
                    else ""
                )
                return {}, f"{where}: {err.code} {err.message or err.reason}{hint}"
            encoded = (secret.get("data") or {}).get(ref.key)
            if encoded is None:
                return {}, f"{where}: no such key"
            try:
                values[arg.name] = base64.b64decode(encoded).decode()
            except (binascii.Error, UnicodeDecodeError):
                return {}, f"{where}: not base64-encoded UTF-8"
        return values, ""


def _completed(phase: str) -> bool:
    return phase in {p.value for p in AnalysisPhase if p.completed}
