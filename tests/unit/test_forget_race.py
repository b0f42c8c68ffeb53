"""`/forget` racing an answer being stored: the /forget wins even when it lands between the answer's
end and its write, because the store checks the forget marker inside that write (both backends)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.conversation import ChatService, MemoryLimits, Turn, user_turn
from bot.store import ImageBlob, Store, StoreOptions, open_store
from tests.store.conftest import redis_url, store_url  # noqa: F401  (fixtures: a fresh SQLite file or Redis db)

CHANNEL = 4242
ASKED, FORGOT = 1_577_000_000_000_000_001, 1_577_000_000_000_000_002  # the question, then the /forget


class ForgetLandsFirst:
    """The real store, with a /forget arriving just before the exchange is written (as a slow write,
    or a second process, makes happen)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.chat: ChatService | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def append_exchange(
        self, channel_id: int, question: Turn, answer: Turn, images: Iterable[ImageBlob] = (), **options: object
    ) -> bool:
        assert self.chat is not None
        await self.chat.forget(channel_id, snowflake=FORGOT, horizon_seconds=600)
        return await self.store.append_exchange(channel_id, question, answer, images, **options)  # type: ignore[arg-type]


async def test_a_forget_between_the_answer_and_its_write_wins(store_url: str) -> None:  # noqa: F811
    real = await open_store(store_url, StoreOptions())
    racing = ForgetLandsFirst(real)
    chat = ChatService(racing, limits=MemoryLimits())  # type: ignore[arg-type]
    racing.chat = chat
    try:
        question = user_turn(author_name="bob", author_id=1, text="remember PELICAN", message_id=ASKED)
        await chat.remember(CHANNEL, question, [], "I will remember PELICAN.")
        assert await real.history(CHANNEL) == []
    finally:
        await real.close()
