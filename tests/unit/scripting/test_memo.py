"""The runner's memory: a bounded result cache, and per-script back-off on a fake clock."""

from __future__ import annotations

from graylane.scripting.memo import BackoffPolicy, CacheLimits, ScriptMemo, input_key, script_key
from graylane.scripting.outcome import Outcome, OutcomeKind


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ok(text: str) -> Outcome:
    return Outcome(OutcomeKind.OK, text)


def test_keys_depend_on_script_text_and_input() -> None:
    a, b = script_key("return 1"), script_key("return 2")
    assert a != b
    assert len(input_key(a, '{"x":1}')) == 64, "fixed size, whatever the input's size"
    assert input_key(a, '{"x":1}') != input_key(a, '{"x":2}') != input_key(b, '{"x":1}')


def test_results_are_remembered_least_recently_used_first_out() -> None:
    memo = ScriptMemo(Clock(), CacheLimits(entries=2))
    memo.remember("a", ok("1"))
    memo.remember("b", ok("2"))
    assert memo.cached("a") == ok("1")  # now "b" is the least recently used
    memo.remember("c", ok("3"))
    assert memo.cached("b") is None
    assert memo.cached("a") == ok("1")
    assert memo.cached("c") == ok("3")


def test_the_cache_is_bounded_in_bytes_too() -> None:
    memo = ScriptMemo(Clock(), CacheLimits(entries=100, bytes=1000))
    for index in range(10):
        memo.remember(str(index), ok("x" * 300))
    entries, size = memo.sizes()
    assert size <= 1000
    assert entries == 2
    memo.remember("huge", ok("x" * 5000))
    assert memo.cached("huge") is None, "an entry larger than the whole cache is not kept"


def test_backoff_doubles_up_to_the_cap_and_success_clears_it() -> None:
    clock = Clock()
    memo = ScriptMemo(clock, backoff=BackoffPolicy(base=5, cap=12))
    assert memo.backed_off("s") is None
    assert memo.failed("s", "time limit exceeded") == 5
    assert memo.backed_off("s") == "time limit exceeded"
    clock.now += 5
    assert memo.backed_off("s") is None, "one attempt is allowed once the window ends"
    assert memo.failed("s", "time limit exceeded again") == 10
    assert memo.failed("s", "and again") == 12
    assert memo.backed_off("s") == "and again"
    assert memo.backed_off("other") is None, "per script"
    memo.succeeded("s")
    assert memo.backed_off("s") is None
    assert memo.failed("s", "fresh") == 5


def test_the_number_of_backed_off_scripts_is_bounded() -> None:
    memo = ScriptMemo(Clock(), backoff=BackoffPolicy(scripts=2))
    for name in ("a", "b", "c"):
        memo.failed(name, name)
    assert memo.backed_off("a") is None
    assert memo.backed_off("c") == "c"
