"""`ProcessScriptRunner`: users' Lua scripts run in a pool of killable worker processes.

A script is untrusted code that can spin in one C call (a backtracking `string.find` is one Lua
instruction: 60 characters took 115 s), allocate without end, or return what cannot be written. So it
never runs in the controller's process: `run()` sends it to a worker (worker.py) and waits for the
answer until a hard wall-clock deadline; a worker that misses it is killed (SIGKILL) and a new one is
started for the next run. Each worker limits its own address space (RLIMIT_AS), so the controller's
memory is bounded by `workers * memory_bytes` more than its own; answers larger than the output limit
are refused before they are read. Every failure — the script's, the worker's, the pipe's, the runner's
— reaches the caller as a `LuaScriptError` with its message; what is remembered and backed off is
memo.py's business.

The call is synchronous, for the pure providers; the controller calls them from worker threads (the
planner runs off the event loop), so a wait blocks one thread, never the loop. Workers start lazily at
the first run (nothing starts when the module is imported or the runner built). Thread-safe.
Must not: run a script in this process, or be imported by the pure providers (they see `ScriptRunner`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graylane.providers.traffic.lua import LuaScriptError, Script
from graylane.scripting.frames import FrameError, FrameTimeout, read_frame, write_frame
from graylane.scripting.memo import (
    DEFAULT_BACKOFF,
    DEFAULT_CACHE,
    BackoffPolicy,
    CacheLimits,
    ScriptMemo,
    input_key,
    script_key,
)
from graylane.scripting.outcome import RESOURCE_FAILURES, Outcome, OutcomeKind

__all__ = ["ProcessScriptRunner", "RunnerLimits", "RunnerStats"]

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclasses.dataclass(frozen=True)
class RunnerLimits:
    workers: int = 2  # the machine has two cores; more would only queue inside the kernel
    cpu_seconds: float = 1.0  # Kruise's limit, counted by the Lua hook: a clear message for plain loops
    # Hard: the worker is killed (one C call never reaches the hook). Generous beside the CPU limit: on
    # this 2-core machine under a load of 7, a script using 1 s of CPU took 2.1 s of wall time.
    wall_seconds: float = 5.0
    memory_bytes: int = 256 * 2**20  # RLIMIT_AS of a worker (it starts at ~15 MB)
    lua_memory_bytes: int = 64 * 2**20  # the Lua allocator's limit, inside the above
    max_input_bytes: int = 4 * 2**20  # the input JSON (an object's spec is at most ~1.5 MB in etcd)
    max_output_bytes: int = 2 * 2**20  # the result JSON
    startup_seconds: float = 30.0  # a worker's start on a loaded machine; not part of any script's time
    # How long a call waits for a free worker: short, so that runaway scripts (backed off after their
    # first failure) hold the planning threads for at most one more deadline.
    queue_seconds: float = 10.0


@dataclasses.dataclass(frozen=True)
class RunnerStats:
    """Counters since the runner was built (tests and metrics read them)."""

    runs: int = 0  # scripts sent to a worker
    cache_hits: int = 0
    backoff_refusals: int = 0
    spawned: int = 0
    killed: int = 0  # workers killed at the deadline or because they misbehaved


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        assert proc.stdout is not None
        self.proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout

    @classmethod
    def start(cls, command: Sequence[str], deadline: float) -> _Worker:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C goes to the controller, which ends its workers
        )
        worker = cls(proc)
        try:
            hello = read_frame(worker._stdout.fileno(), 4096, deadline)
        except BaseException:
            worker.kill()
            raise
        if not isinstance(hello, dict) or not hello.get("ready"):
            worker.kill()
            raise FrameError(f"the script worker did not start (it said {hello!r}, exit code {proc.poll()})")
        return worker

    def call(self, request: Mapping[str, Any], limit: int, deadline: float) -> Any:
        write_frame(self._stdin.fileno(), request, deadline)
        answer = read_frame(self._stdout.fileno(), limit, deadline)
        if answer is None:
            raise FrameError("the pipe closed")
        return answer

    def kill_process(self, grace: float = 0.0) -> None:
        """End the process (after `grace` seconds to end by itself, e.g. when its pipe just closed)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=grace)
            return
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)  # SIGKILL cannot be ignored: this is a reap, not a wait

    def kill(self) -> None:
        self.kill_process()
        for pipe in (self._stdin, self._stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def exit_text(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "it stopped answering"
        return f"it ended with signal {-code}" if code < 0 else f"it exited with code {code}"


class ProcessScriptRunner:
    """The `ScriptRunner` the controller uses; see the module docstring."""

    def __init__(
        self,
        limits: RunnerLimits = RunnerLimits(),
        *,
        clock: Clock = time.monotonic,
        cache: CacheLimits = DEFAULT_CACHE,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        command: Sequence[str] | None = None,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._memo = ScriptMemo(clock, cache, backoff)
        self._command = list(command or _worker_command(limits))
        self._slots = threading.BoundedSemaphore(limits.workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._closed = False
        self._stats = RunnerStats()

    # -- ScriptRunner ---------------------------------------------------------------------------------

    def run(self, script: Script, obj: Mapping[str, Any]) -> Any:
        """The script's result for the global `obj`, as JSON values; LuaScriptError on any failure."""
        try:
            outcome = self._outcome(script, obj)
        except LuaScriptError:
            raise
        except Exception as err:  # a fault of the runner itself still names the script
            log.exception("running Lua script %s failed", script.name)
            raise LuaScriptError(f"Lua script {script.name} could not be run: {err}") from err
        if not outcome.ok:
            raise LuaScriptError(f"Lua script {script.name} failed: {outcome.text}")
        try:
            return json.loads(outcome.text)
        except ValueError as err:  # the sandbox writes valid JSON; this guards the guard
            raise LuaScriptError(f"Lua script {script.name} returned unreadable JSON: {err}") from err

    # -- life cycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every worker; later runs fail. Safe to call twice, and from another thread.

        A busy worker's pipes stay open for the thread using it: its read ends at once (the process is
        gone) and that thread closes them, so no descriptor is closed under a running read.
        """
        with self._lock:
            self._closed = True
            idle, busy = list(self._idle), [w for w in self._live if w not in self._idle]
            self._live.clear()
            self._idle.clear()
        for worker in idle:
            worker.kill()
        for worker in busy:
            worker.kill_process()

    def __enter__(self) -> ProcessScriptRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> RunnerStats:
        with self._lock:
            return self._stats

    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(worker.proc.pid for worker in self._live)

    # -- one run --------------------------------------------------------------------------------------

    def _outcome(self, script: Script, obj: Mapping[str, Any]) -> Outcome:
        input_json = _input_json(obj, self._limits.max_input_bytes)
        code = script_key(script.source)
        key = input_key(code, input_json)
        cached = self._memo.cached(key)
        if cached is not None:
            self._count(cache_hits=1)
            return cached
        message = self._memo.backed_off(code)
        if message is not None:
            self._count(backoff_refusals=1)
            return Outcome(OutcomeKind.ERROR, message)
        outcome = self._execute(script.source, input_json)
        if outcome.kind not in RESOURCE_FAILURES:
            self._memo.remember(key, outcome)
            self._memo.succeeded(code)  # the script ran to its end: whatever was wrong was the input
        else:
            seconds = self._memo.failed(code, outcome.text)
            log.warning("Lua script failed (%s); not run again for %.0f s", outcome.text, seconds)
        return outcome

    def _execute(self, source: str, input_json: str) -> Outcome:
        limits = self._limits
        request = {
            "source": source,
            "input": input_json,
            "cpu_seconds": limits.cpu_seconds,
            "backstop_seconds": limits.wall_seconds + 2,
        }
        with self._worker() as worker:
            self._count(runs=1)
            try:
                answer = worker.call(request, limits.max_output_bytes + 4096, self._clock_deadline())
            except FrameTimeout:
                self._discard(worker)
                text = f"time limit exceeded ({limits.wall_seconds:g} s wall clock; its process was killed)"
                return Outcome(OutcomeKind.TIMEOUT, text)
            except FrameError as err:
                self._discard(worker)
                worker.kill_process(grace=1.0)  # reaped first, so that its exit status can be told
                return Outcome(OutcomeKind.CRASH, f"its worker process failed: {err} ({worker.exit_text()})")
            outcome = _parse_answer(answer)
            if outcome.kind in (OutcomeKind.CRASH, OutcomeKind.MEMORY):
                self._discard(worker)  # out of memory, or not speaking the protocol: never reuse it
            return outcome

    def _clock_deadline(self) -> float:
        # The frames use time.monotonic(); an injected clock only drives the back-off.
        return time.monotonic() + self._limits.wall_seconds

    @contextlib.contextmanager
    def _worker(self) -> Any:
        if not self._slots.acquire(timeout=self._limits.queue_seconds):
            raise LuaScriptError(
                f"no script worker was free within {self._limits.queue_seconds:g} s (all busy)"
            )
        try:
            worker = self._checkout()
            try:
                yield worker
            finally:
                self._checkin(worker)
        finally:
            self._slots.release()

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise LuaScriptError("the script runner is closed (the controller is stopping)")
            if self._idle:
                return self._idle.pop()
        worker = _Worker.start(self._command, time.monotonic() + self._limits.startup_seconds)
        with self._lock:
            self._stats = dataclasses.replace(self._stats, spawned=self._stats.spawned + 1)
            if self._closed:
                worker.kill()
                raise LuaScriptError("the script runner is closed (the controller is stopping)")
            self._live.add(worker)
        return worker

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._live and not self._closed:
                self._idle.append(worker)
                return
        worker.kill()  # discarded, or the runner closed while it was busy: its pipes are ours to close

    def _discard(self, worker: _Worker) -> None:
        """Never reuse `worker`; `_checkin` kills it and closes its pipes."""
        with self._lock:
            self._live.discard(worker)
            self._stats = dataclasses.replace(self._stats, killed=self._stats.killed + 1)

    def _count(self, **increments: int) -> None:
        with self._lock:
            changes = {name: getattr(self._stats, name) + value for name, value in increments.items()}
            self._stats = dataclasses.replace(self._stats, **changes)


def _worker_command(limits: RunnerLimits) -> list[str]:
    return [
        sys.executable,
        "-m",
        "graylane.scripting.worker",
        "--memory-bytes",
        str(limits.memory_bytes),
        "--lua-memory-bytes",
        str(limits.lua_memory_bytes),
        "--max-output-bytes",
        str(limits.max_output_bytes),
    ]


def _input_json(obj: Mapping[str, Any], limit: int) -> str:
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise LuaScriptError(f"the input of the Lua script cannot be written as JSON: {err}") from err
    if len(text) > limit:
        raise LuaScriptError(f"the input of the Lua script is {len(text)} bytes, more than {limit}")
    return text


def _parse_answer(answer: Any) -> Outcome:
    if (
        not isinstance(answer, dict)
        or answer.get("kind") not in OutcomeKind.ALL
        or not isinstance(answer.get("text"), str)
    ):
        return Outcome(OutcomeKind.CRASH, "its worker process sent an answer that is not one")
    return Outcome(answer["kind"], answer["text"])
