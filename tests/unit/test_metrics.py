"""The metrics' own logic: the feature a model request counts under, and the loop-lag max's window."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import FEATURE, LAG_MAX_SLOTS, Metrics, counts_as


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    text = metrics.render()[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


async def test_requests_count_under_the_feature_of_their_entry_point_and_its_tasks() -> None:
    metrics = Metrics()

    @counts_as("ocr")
    async def transcribe() -> str:
        async def in_a_task() -> None:
            metrics.model_request("ok", first_token=0.5, total=1.0, prompt_tokens=10, completion_tokens=3)

        await asyncio.create_task(in_a_task())
        return FEATURE.get()

    assert await transcribe() == "ocr"
    assert FEATURE.get() == "other"  # only inside the entry point
    assert value(metrics, "glimpse_model_requests_total", feature="ocr", outcome="ok") == 1
    assert value(metrics, "glimpse_model_tokens_total", feature="ocr", kind="prompt") == 10
    assert value(metrics, "glimpse_model_answer_seconds_count", feature="ocr") == 1


def test_the_loop_lag_max_forgets_what_is_older_than_its_window() -> None:
    metrics = Metrics()
    metrics._note_worst(0, 0.5)  # a slow start-up
    metrics._note_worst(1, 0.02)
    assert value(metrics, "glimpse_event_loop_lag_max_seconds") == 0.5
    metrics._note_worst(LAG_MAX_SLOTS, 0.01)  # the start-up's slot has left the window
    assert value(metrics, "glimpse_event_loop_lag_max_seconds") == 0.02
