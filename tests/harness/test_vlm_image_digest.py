"""The VLM server records a digest of each image it decoded, so a test can tell whether two requests
carried the very same image bytes (not merely images of the same size)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import openai
import pytest

from tests.fakes.vlm import VLMServer, data_url, image_bytes, user_message


@pytest.fixture
async def vlm() -> AsyncIterator[VLMServer]:
    async with VLMServer() as server:
        yield server


async def test_each_received_image_carries_the_digest_of_its_decoded_bytes(vlm: VLMServer) -> None:
    teal, twin, navy = image_bytes(color="teal"), image_bytes(color="teal"), image_bytes(color="navy")
    async with openai.AsyncOpenAI(api_key=vlm.api_key, base_url=vlm.base_url, max_retries=0) as client:
        for images in ((teal, navy), (twin,)):
            await client.chat.completions.create(
                model=vlm.model, messages=[user_message("Same?", *(data_url(i) for i in images))]
            )

    first, second = vlm.completions
    assert [image.sha256 for image in first.images] == [hashlib.sha256(data).hexdigest() for data in (teal, navy)]
    assert second.images[0].sha256 == first.images[0].sha256 != first.images[1].sha256
