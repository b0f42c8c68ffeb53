"""Claims: the store decides who handles an event; this process's memory answers its own redeliveries
and stands in while the store is down."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.guard import Claims, Work
from bot.store import open_store


async def test_the_first_claim_in_any_process_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'glimpse.db'}"
    async with await open_store(url) as store, await open_store(url) as other_store:
        here, there = Claims(store), Claims(other_store)
        assert await here.claim(Work.REPLY, 1001)
        assert not await here.claim(Work.REPLY, 1001)  # a redelivery to this process
        assert not await there.claim(Work.REPLY, 1001)  # the same event in a second process
        assert await there.claim(Work.MODERATION, 1001)  # other work on the same message
        assert (here.refused, there.refused) == (1, 1)


async def test_a_redelivery_is_refused_from_memory_without_asking_the_store(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'glimpse.db'}")
    claims = Claims(store)
    assert await claims.claim(Work.INTERACTION, "77")
    await store.close()  # were it asked, the store would fail
    assert not await claims.claim(Work.INTERACTION, "77")


async def test_while_the_store_is_down_each_event_is_still_handled_once_here(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'glimpse.db'}")
    await store.close()
    claims = Claims(store, capacity=2)
    assert await claims.claim(Work.REPLY, 1)
    assert not await claims.claim(Work.REPLY, 1)
    assert await claims.claim(Work.REPLY, 2) and await claims.claim(Work.REPLY, 3)
    assert await claims.claim(Work.REPLY, 1)  # beyond the memory's capacity, the oldest is forgotten


async def test_a_stalled_store_is_given_up_on_after_the_wait() -> None:
    """An interaction's claim must leave time to answer within Discord's 3 seconds."""

    class Stalled:
        async def claim(self, kind: str, key: str, ttl: float) -> bool:
            await asyncio.Event().wait()  # never answers
            raise AssertionError

    claims = Claims(Stalled())
    assert await claims.claim(Work.INTERACTION, "88", wait=0.05)  # handled here rather than never
    assert not await claims.claim(Work.INTERACTION, "88", wait=0.05)  # and still only once here
