"""Event writes are ordered per object and reason, and concurrent across objects."""

from __future__ import annotations

import asyncio

from graylane.kube.events import _KeyedLocks


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks, release = _KeyedLocks(), asyncio.Event()
    order: list[str] = []

    async def slow() -> None:
        async with locks.hold(("ns", "a", "Progressing")):
            order.append("a starts")
            await release.wait()
            order.append("a ends")

    async def quick() -> None:
        async with locks.hold(("ns", "b", "Progressing")):
            order.append("b")

    first = asyncio.create_task(slow())
    await asyncio.sleep(0)
    await asyncio.wait_for(quick(), timeout=5)  # would time out behind a single global lock
    release.set()
    await first
    assert order == ["a starts", "b", "a ends"]
    assert len(locks) == 0  # nothing held, nothing kept


async def test_the_same_key_is_serialised_in_arrival_order() -> None:
    locks, order = _KeyedLocks(), []

    async def write(name: str) -> None:
        async with locks.hold(("ns", "a", "Progressing")):
            order.append(f"{name} in")
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            order.append(f"{name} out")

    await asyncio.gather(write("one"), write("two"), write("three"))
    assert order == ["one in", "one out", "two in", "two out", "three in", "three out"]
    assert len(locks) == 0
