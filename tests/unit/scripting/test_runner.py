"""The process pool that runs users' scripts: hard deadline, memory limit, errors, back-off, cache.

These start real worker processes (`python -m graylane.scripting.worker`); the deadlines are generous
so they hold on a loaded machine, and nothing here asserts how fast a healthy run is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from graylane.providers.traffic.lua import LuaScriptError, Script
from graylane.scripting.frames import read_frame, write_frame
from graylane.scripting.memo import BackoffPolicy
from graylane.scripting.pool import ProcessScriptRunner, RunnerLimits

# One C call that never returns in practice: a backtracking match (issue 10: 60 characters took 115 s).
BACKTRACKING = "return string.find(string.rep('a', 60), string.rep('a-', 30) .. 'b')"
# 100 distinct 3 MB strings: ~300 MB.
MEMORY_BOMB = "local parts = {} for i = 1, 100 do parts[i] = string.rep('x', 3e6) .. i end return #parts"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runner(clock: Clock) -> Iterator[ProcessScriptRunner]:
    with ProcessScriptRunner(RunnerLimits(wall_seconds=3.0), clock=clock) as pool:
        yield pool


def script(source: str, name: str = "test.lua") -> Script:
    return Script(name, source)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_result_comes_back_as_json_values(runner: ProcessScriptRunner) -> None:
    obj = {"annotations": {"a": "1"}, "weight": "20"}
    source = "local a = obj.annotations a['w'] = obj.weight return {a = a, n = 50 * 40 / 100}"
    assert runner.run(script(source), obj) == {"a": {"a": "1", "w": "20"}, "n": 20}


def test_nothing_starts_until_the_first_script() -> None:
    with ProcessScriptRunner() as pool:
        assert pool.worker_pids() == []
        assert pool.stats().spawned == 0


def test_a_runaway_c_call_is_killed_at_the_wall_clock_deadline(runner: ProcessScriptRunner) -> None:
    runner.run(script("return 1"), {})
    [first] = runner.worker_pids()
    started = time.monotonic()
    with pytest.raises(LuaScriptError) as err:
        runner.run(script(BACKTRACKING, "hostile.lua"), {})
    took = time.monotonic() - started
    print(f"backtracking string.find ended after {took:.2f} s (deadline 3 s)")
    assert str(err.value) == (
        "Lua script hostile.lua failed: time limit exceeded (3 s wall clock; its process was killed)"
    )
    assert not Path(f"/proc/{first}").exists() or _is_zombie_free(first), "the worker was killed and reaped"
    assert runner.stats().killed == 1
    assert runner.run(script("return 2"), {}) == 2, "a new worker replaces the killed one"
    assert runner.worker_pids() != [first]


def _is_zombie_free(pid: int) -> bool:
    # The pid may already belong to an unrelated new process; ours is gone if it is not our child.
    status = Path(f"/proc/{pid}/status").read_text()
    return f"PPid:\t{os.getpid()}" not in status


def test_a_plain_loop_stops_at_the_cpu_limit_with_a_clear_message() -> None:
    limits = RunnerLimits(cpu_seconds=0.2, wall_seconds=30)
    with ProcessScriptRunner(limits) as pool, pytest.raises(LuaScriptError) as err:
        pool.run(script("while true do end"), {})
    assert str(err.value) == "Lua script test.lua failed: time limit exceeded (0.2 s)"


def test_each_worker_has_an_os_memory_limit(runner: ProcessScriptRunner) -> None:
    runner.run(script("return 1"), {})
    [pid] = runner.worker_pids()
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
    assert line.split()[3:5] == [str(256 * 2**20)] * 2, line


def test_memory_beyond_the_os_limit_fails_the_script_not_the_controller() -> None:
    # The Lua allocator's own limit is set above the process limit, so the OS limit is what stops it.
    limits = RunnerLimits(memory_bytes=160 * 2**20, lua_memory_bytes=2**30, cpu_seconds=30, wall_seconds=60)
    before = rss_mb(os.getpid())
    with ProcessScriptRunner(limits) as pool:
        with pytest.raises(LuaScriptError) as err:
            pool.run(script(MEMORY_BOMB), {})
        assert "memory" in str(err.value), err.value
        assert pool.stats().killed == 1, "a worker that ran out of memory is not reused"
        assert pool.run(script("return 'fine'"), {}) == "fine"
    after = rss_mb(os.getpid())
    print(f"pytest RSS {before:.0f} MB -> {after:.0f} MB around a script that hit a 160 MiB limit")
    assert after - before < 50


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("local t = {} t.self = t return t", "result.self is a table that contains itself (a cycle)"),
        (r"return {x = '\255\254'}", "result.x is a string that is not valid UTF-8"),
        ("return {f = function() end}", "result.f is a value of type function"),
        ("return {h = 0/0}", "result.h is a number that is not finite"),
        ("return {s = string.rep('a', 3 * 2^20)}", "output larger than 2097152 bytes"),
    ],
)
def test_results_that_cannot_be_written_are_script_errors(
    runner: ProcessScriptRunner, source: str, message: str
) -> None:
    with pytest.raises(LuaScriptError) as err:
        runner.run(script(source), {})
    assert str(err.value).startswith(
        f"Lua script test.lua failed: the result cannot be written as JSON: {message}"
    )


def test_string_dump_is_a_script_error(runner: ProcessScriptRunner) -> None:
    with pytest.raises(LuaScriptError, match=r"attempt to call a nil value \(field 'dump'\)"):
        runner.run(script("return string.dump(function() end)"), {})


def test_an_input_that_is_not_json_is_refused_before_anything_runs(runner: ProcessScriptRunner) -> None:
    with pytest.raises(LuaScriptError, match="the input of the Lua script cannot be written as JSON"):
        runner.run(script("return 1"), {"x": object()})
    with pytest.raises(LuaScriptError, match="cannot be written as JSON"):
        runner.run(script("return 1"), {"x": float("nan")})
    assert runner.stats().runs == 0


def test_pure_results_and_script_errors_are_cached(runner: ProcessScriptRunner) -> None:
    counter = script("return obj.n + 1")
    assert runner.run(counter, {"n": 1}) == 2
    assert runner.run(counter, {"n": 1}) == 2
    assert runner.run(counter, {"n": 2}) == 3
    assert (runner.stats().runs, runner.stats().cache_hits) == (2, 1)
    broken = script("error('no')")
    for _ in range(3):
        with pytest.raises(LuaScriptError, match="script:1: no"):
            runner.run(broken, {})
    assert (runner.stats().runs, runner.stats().cache_hits) == (3, 3)


def test_cached_results_are_fresh_objects(runner: ProcessScriptRunner) -> None:
    first = runner.run(script("return {a = {1}}"), {})
    first["a"].append(2)
    assert runner.run(script("return {a = {1}}"), {}) == {"a": [1]}


def test_a_script_that_ran_out_of_time_is_backed_off(clock: Clock) -> None:
    limits = RunnerLimits(cpu_seconds=0.2, wall_seconds=30)
    with ProcessScriptRunner(limits, clock=clock, backoff=BackoffPolicy(base=5, cap=60)) as pool:
        loop = script("while obj.spin do end return 'done'", "loop.lua")
        with pytest.raises(LuaScriptError, match=r"time limit exceeded \(0.2 s\)") as first:
            pool.run(loop, {"spin": True})
        # Backed off for any input: the next calls fail at once with the same message, nothing runs.
        for obj in ({"spin": True}, {"spin": False}):
            with pytest.raises(LuaScriptError) as again:
                pool.run(loop, obj)
            assert str(again.value) == str(first.value)
        assert (pool.stats().runs, pool.stats().backoff_refusals) == (1, 2)
        clock.now += 5
        assert pool.run(loop, {"spin": False}) == "done", "it runs again once the window has passed"
        assert pool.stats().runs == 2


def test_concurrent_callers_share_a_bounded_pool() -> None:
    results: list[object] = []
    errors: list[BaseException] = []

    def call(index: int) -> None:
        try:
            results.append(
                pool.run(script("local s = 0 for i = 1, 1e5 do s = s + i end return s + obj.i"), {"i": index})
            )
        except BaseException as err:
            errors.append(err)

    with ProcessScriptRunner(RunnerLimits(workers=2, wall_seconds=30)) as pool:
        threads = [threading.Thread(target=call, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert sorted(results) == [5000050000 + index for index in range(6)]
        assert pool.stats().spawned <= 2


def test_close_kills_the_workers_and_later_runs_fail() -> None:
    pool = ProcessScriptRunner()
    pool.run(script("return 1"), {})
    [pid] = pool.worker_pids()
    pool.close()
    assert pool.worker_pids() == []
    with pytest.raises(LuaScriptError, match="the script runner is closed"):
        pool.run(script("return 2"), {})
    pool.close()  # twice is fine
    assert not Path(f"/proc/{pid}").exists() or _is_zombie_free(pid)


def test_close_from_another_thread_ends_a_run_in_progress() -> None:
    pool = ProcessScriptRunner(RunnerLimits(wall_seconds=60))
    pool.run(script("return 1"), {})
    timer = threading.Timer(1.0, pool.close)
    timer.start()
    started = time.monotonic()
    with pytest.raises(LuaScriptError) as err:
        pool.run(script(BACKTRACKING), {})
    timer.join()
    print(f"a run in progress ended {time.monotonic() - started:.2f} s after it began (closed at 1 s)")
    assert "time limit" not in str(err.value), "ended by the close, not by the 60 s deadline"


def test_an_orphaned_worker_ends_itself_at_its_backstop() -> None:
    """A worker whose pool died mid-run (no one to kill it) is ended by its own alarm."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graylane.scripting.worker",
            "--memory-bytes",
            str(256 * 2**20),
            "--lua-memory-bytes",
            str(64 * 2**20),
            "--max-output-bytes",
            "4096",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert worker.stdin is not None
        assert worker.stdout is not None
        assert read_frame(worker.stdout.fileno(), 4096, time.monotonic() + 60) == {
            "ready": True,
            "pid": worker.pid,
        }
        request = {"source": BACKTRACKING, "input": "{}", "cpu_seconds": 1, "backstop_seconds": 1}
        write_frame(worker.stdin.fileno(), request)
        assert worker.wait(timeout=60) == -signal.SIGALRM
    finally:
        worker.kill()
        worker.wait()
        for pipe in (worker.stdin, worker.stdout):
            if pipe is not None:
                pipe.close()


# A stand-in worker that says it is ready and then misbehaves in one way (the protocol is frames.py).
FAKE_WORKER = """
import os, sys
from graylane.scripting.frames import read_frame, write_frame
write_frame(1, {{"ready": True, "pid": os.getpid()}})
read_frame(0, 2**26)
{action}
"""


def fake_runner(action: str, clock: Clock) -> ProcessScriptRunner:
    command = [sys.executable, "-c", FAKE_WORKER.format(action=action)]
    return ProcessScriptRunner(RunnerLimits(wall_seconds=30), clock=clock, command=command)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("os._exit(3)", "its worker process failed: the pipe closed (it exited with code 3)"),
        ("os.kill(os.getpid(), 9)", "its worker process failed: the pipe closed (it ended with signal 9)"),
        ('write_frame(1, {"kind": "bogus"})', "its worker process sent an answer that is not one"),
        ('os.write(1, b"\\xff" * 8)', "a frame of 4294967295 bytes, more than the limit"),
    ],
)
def test_a_worker_that_dies_or_breaks_the_protocol_is_a_script_failure_and_backs_off(
    clock: Clock, action: str, message: str
) -> None:
    with fake_runner(action, clock) as pool:
        with pytest.raises(LuaScriptError) as err:
            pool.run(script("return 1"), {})
        assert str(err.value).startswith("Lua script test.lua failed: ")
        assert message in str(err.value)
        with pytest.raises(LuaScriptError) as again:
            pool.run(script("return 1"), {"other": "input"})
        assert str(again.value) == str(err.value), "backed off: the same message, nothing run"
        assert (pool.stats().runs, pool.stats().killed) == (1, 1), "and the worker is not reused"
