"""A script worker process: `python -m graylane.scripting.worker`, started and killed by pool.py.

It limits its own address space (RLIMIT_AS) before it runs anything, says it is ready, then answers
one request frame at a time on stdin/stdout (frames.py) until stdin closes. A request is
`{"source", "input", "cpu_seconds", "backstop_seconds"}`; the answer `{"kind", "text"}` (outcome.Outcome;
the pool does not reuse a worker that ran out of memory). Stdout is kept for frames only: fd 1 is
pointed at stderr so that nothing else can write into the protocol.

Each request arms `alarm(backstop_seconds)` with SIGALRM's default action (end the process): the pool
kills a worker that misses its deadline, and the alarm also ends one whose pool died meanwhile (an
orphan stuck in one C call, e.g. a backtracking `string.find`, would otherwise spin for minutes).
Must not: import anything of graylane but the sandbox and frames (it starts for every respawn).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
from typing import Any

from graylane.scripting.frames import read_frame, write_frame
from graylane.scripting.outcome import Outcome, OutcomeKind
from graylane.scripting.sandbox import Sandbox

__all__ = ["main"]

MAX_REQUEST_BYTES = 64 * 2**20


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="graylane.scripting.worker")
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--lua-memory-bytes", type=int, required=True)
    parser.add_argument("--max-output-bytes", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pool decides when a worker ends
    resource.setrlimit(resource.RLIMIT_AS, (args.memory_bytes, args.memory_bytes))
    sandbox = Sandbox(lua_memory=args.lua_memory_bytes, max_output=args.max_output_bytes)
    write_frame(out, {"ready": True, "pid": os.getpid()})
    while True:
        request = read_frame(0, MAX_REQUEST_BYTES)
        if request is None:
            return 0  # the pool closed our stdin: done
        write_frame(out, _answer(sandbox, request, args.memory_bytes))


def _answer(sandbox: Sandbox, request: dict[str, Any], memory_bytes: int) -> dict[str, Any]:
    signal.alarm(max(1, int(request["backstop_seconds"])))
    try:
        outcome = sandbox.run(request["source"], request["input"], float(request["cpu_seconds"]))
    except MemoryError:
        outcome = Outcome(
            OutcomeKind.MEMORY, f"memory limit of the script process exceeded ({memory_bytes >> 20} MiB)"
        )
    except Exception as err:  # every failure is an answer: the pool must hear what went wrong
        outcome = Outcome(OutcomeKind.ERROR, f"{type(err).__name__}: {err}")
    finally:
        signal.alarm(0)
    return {"kind": outcome.kind, "text": outcome.text}


if __name__ == "__main__":
    sys.exit(main())
