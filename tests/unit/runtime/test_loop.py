"""The reconcile loop and its write primitives with a toy Reconciler on the FakeApi: status first, then
actions; injected conflicts and stale caches; refused writes reported once; plans off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import cast

import pytest
from tests.unit.runtime.fakeapi import FakeApi

from graylane.kube.client import KubeClient, Obj
from graylane.kube.events import CORE_EVENT
from graylane.kube.informer import Informer
from graylane.kube.resources import Resource
from graylane.kube.workqueue import FakeClock
from graylane.runtime.errors import REFUSAL_PREFIX, Backoff, Refused
from graylane.runtime.loop import CONFLICT_REQUEUE, REFUSED_REASON, Decision, ReconcileLoop
from graylane.runtime.manager import Manager, ManagerOptions
from graylane.runtime.writer import Writer

WIDGET = Resource("example.io", "v1", "widgets", "Widget")
KEY = "ns/w"


class Widgets:
    """Counts status.n up to spec.target, one step per pass, labelling the widget with each step."""

    name = "widgets"
    workers = 1
    primary = WIDGET
    status_message = True

    def __init__(self) -> None:
        self.observed = 0
        self.plan_threads: list[str] = []
        self.acted: list[str] = []

    def setup(self, manager: Manager) -> Informer:
        return manager.watch(self, WIDGET)

    async def observe(self, obj: Obj) -> Obj:
        self.observed += 1
        return obj

    def plan(self, obj: Obj) -> Decision[str]:
        self.plan_threads.append(threading.current_thread().name)
        status = obj.get("status") or {}
        n = int(status.get("n") or 0)
        if n >= int(obj["spec"]["target"]):
            return Decision()
        return Decision(status={**status, "n": n + 1}, actions=(f"step-{n + 1}",))

    async def act(self, action: str, obj: Obj, writer: Writer) -> None:
        self.acted.append(action)
        body = {"metadata": {"labels": {"step": action}}}
        await writer.patch(WIDGET, "w", body, "ns")


class Rig:
    def __init__(
        self, api: FakeApi, manager: Manager, loop: ReconcileLoop[Obj, str], widgets: Widgets
    ) -> None:
        self.api, self.manager, self.loop, self.widgets = api, manager, loop, widgets

    async def settle(self) -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    def widget(self) -> Obj:
        found = self.api.stored(WIDGET, "w")
        assert found is not None
        return found


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    api = FakeApi()
    api.put(WIDGET, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"target": 3}})
    options = ManagerOptions(leader_election=False, handle_signals=False, probe_port=0)
    manager = Manager(cast(KubeClient, api), options, clock=FakeClock(), own_client=False)
    widgets = Widgets()
    loop: ReconcileLoop[Obj, str] = ReconcileLoop(widgets)
    manager.add(loop)
    async with manager.caches():
        yield Rig(api, manager, loop, widgets)


async def test_the_status_is_written_first_then_the_actions(rig: Rig) -> None:
    assert await rig.loop.reconcile(KEY) is None
    writes = [(verb, plural) for verb, plural, _ in rig.api.calls]
    assert writes == [("update", "widgets"), ("patch", "widgets")]  # PUT status, then the label
    assert rig.widget()["status"] == {"n": 1}
    assert rig.widget()["metadata"]["labels"] == {"step": "step-1"}


async def test_the_plan_runs_off_the_event_loop(rig: Rig) -> None:
    await rig.loop.reconcile(KEY)
    assert rig.widgets.plan_threads
    assert all(name.startswith("plan") for name in rig.widgets.plan_threads)
    assert threading.current_thread().name not in rig.widgets.plan_threads


async def test_a_plan_its_reconciler_says_cannot_block_runs_on_the_event_loop(rig: Rig) -> None:
    offloaded: list[int] = []

    def offload(obj: Obj) -> bool:
        offloaded.append(int((obj.get("status") or {}).get("n") or 0))
        return bool(offloaded[-1] % 2)  # odd counts go to the pool, even ones stay on the loop

    rig.widgets.offload = offload  # type: ignore[attr-defined]
    await rig.loop.reconcile(KEY)  # n = 0: on the loop
    await rig.settle()
    await rig.loop.reconcile(KEY)  # n = 1: in a plan thread
    here = threading.current_thread().name
    assert offloaded == [0, 1]
    assert rig.widgets.plan_threads[0] == here
    assert rig.widgets.plan_threads[1].startswith("plan")
    assert rig.widget()["status"] == {"n": 2}


async def test_a_conflicting_status_write_carries_out_no_action_and_replans_from_fresh_state(
    rig: Rig,
) -> None:
    rig.api.hold("widgets")
    await rig.api.patch(WIDGET, "w", {"metadata": {"annotations": {"someone": "else"}}}, "ns")  # not cached
    assert await rig.loop.reconcile(KEY) == CONFLICT_REQUEUE
    assert rig.widgets.acted == []  # the decision was not stored, so none of its effects happen
    assert "n" not in (rig.widget().get("status") or {})

    observed = rig.widgets.observed
    assert await rig.loop.reconcile(KEY) is not None  # the cache has not shown the newer object yet
    assert rig.widgets.observed == observed  # ... so nothing is observed or decided meanwhile

    rig.api.release("widgets")
    await rig.settle()
    assert await rig.loop.reconcile(KEY) is None
    assert rig.widgets.acted == ["step-1"]
    assert rig.widget()["metadata"]["annotations"] == {"someone": "else"}


async def test_a_pass_waits_for_its_own_writes_before_deciding_again(rig: Rig) -> None:
    rig.api.hold("widgets")
    await rig.loop.reconcile(KEY)
    wait = await rig.loop.reconcile(KEY)
    assert wait is not None
    assert wait > 0
    assert rig.widgets.acted == ["step-1"]  # not "step-1" twice from the stale n=0
    rig.api.release("widgets")
    await rig.settle()
    await rig.loop.reconcile(KEY)
    await rig.settle()
    await rig.loop.reconcile(KEY)
    assert rig.widgets.acted == ["step-1", "step-2", "step-3"]
    assert rig.widget()["status"] == {"n": 3}


async def test_expectations_met_by_events_requeue_the_key(rig: Rig) -> None:
    queue = rig.manager.queue("widgets")
    queue.done(await queue.get())  # the key the initial list queued
    rig.api.hold("widgets")
    await rig.loop.reconcile(KEY)
    assert len(queue) == 0
    rig.api.release("widgets")
    await rig.settle()
    assert len(queue) == 1  # the event and the met expectation both ask; the queue keeps one


async def test_a_lost_event_costs_a_relist_after_the_deadline_not_a_blind_decision(rig: Rig) -> None:
    rig.api.hold("widgets")  # never released: the watch has lost the event
    await rig.loop.reconcile(KEY)
    informer = rig.loop._primary
    assert informer is not None
    clock = rig.manager.clock
    assert isinstance(clock, FakeClock)
    clock.advance(31)
    lists = informer.relists
    await rig.loop.reconcile(KEY)  # past the deadline: asks for a re-list and waits again
    await rig.settle()
    assert informer.relists == lists + 1
    assert not rig.manager.expectations.check(("widgets", KEY)).waiting
    await rig.loop.reconcile(KEY)
    assert rig.widgets.acted == ["step-1", "step-2"]


@pytest.mark.parametrize(("code", "reason"), [(422, "Invalid"), (403, "Forbidden"), (400, "BadRequest")])
async def test_a_refused_write_is_said_in_status_and_one_warning_event(
    rig: Rig, code: int, reason: str
) -> None:
    denial = "admission webhook denied the request: no"
    clock = rig.manager.clock
    assert isinstance(clock, FakeClock)
    for _ in range(3):
        rig.api.fail("patch", "widgets", code, reason, denial)
        with pytest.raises(Refused) as raised:
            await rig.loop.reconcile(KEY)
        assert isinstance(raised.value, Backoff)  # the manager retries it with back-off, one log line
        await rig.settle()
        clock.advance(10)  # past the key's hold-back (1 s, 2 s, 4 s), within the Event interval
    message = rig.widget()["status"]["message"]
    assert message.startswith(REFUSAL_PREFIX)
    assert f"{code} {denial}" in message
    events = [o for (plural, _, _), o in rig.api.objects.items() if plural == CORE_EVENT.plural]
    assert [(e["type"], e["reason"], e["count"]) for e in events] == [("Warning", REFUSED_REASON, 1)]
    status_writes = [c for c in rig.api.calls if c[:2] == ("patch", "widgets")]
    assert len(status_writes) == 3 + 1  # three refused label patches, the message written once


async def test_a_refused_write_is_not_retried_in_a_hot_loop(rig: Rig) -> None:
    queue = rig.manager.queue("widgets")
    rig.api.fail("patch", "widgets", 403, "Forbidden", "nope")
    await rig.manager._reconcile(rig.loop, queue, KEY)  # as a worker runs it
    assert queue.num_requeues(KEY) == 1  # back-off, not forget-and-requeue
    await rig.settle()
    calls = len(rig.api.calls)
    for _ in range(5):  # the watch events of the refusal's own writes ask for the key again at once
        assert await rig.loop.reconcile(KEY) is not None
    assert len(rig.api.calls) == calls  # held back: nothing planned, nothing written


async def test_the_first_pass_that_goes_through_clears_the_report(rig: Rig) -> None:
    rig.api.fail("patch", "widgets", 403, "Forbidden", "nope")
    with pytest.raises(Refused):
        await rig.loop.reconcile(KEY)
    await rig.settle()
    assert rig.widget()["status"]["message"].startswith(REFUSAL_PREFIX)
    clock = rig.manager.clock
    assert isinstance(clock, FakeClock)
    clock.advance(2)
    await rig.loop.reconcile(KEY)
    assert rig.widget()["status"]["message"] == ""
