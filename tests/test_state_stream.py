"""The sequenced, conflating broadcast behind the subscription streams."""

from __future__ import annotations

import asyncio

from gateway.state_stream import StateStream


async def test_fast_subscriber_then_every_update_in_sequence_order() -> None:
    stream: StateStream[str] = StateStream()
    subscription, start = stream.subscribe()
    assert start.snapshot == () and not start.resync
    for i in range(5):
        stream.publish("AAPL", "AAPL", f"v{i}")
        updates = await subscription.wait_updates()
        assert [u.value for u in updates] == [f"v{i}"]
        assert not updates[0].conflated
    assert stream.sequence == 5


async def test_topic_filter_then_only_those_topics_delivered() -> None:
    stream: StateStream[str] = StateStream()
    subscription, _ = stream.subscribe(["MSFT"])
    stream.publish("AAPL", "AAPL", "a")
    stream.publish("MSFT", "MSFT", "m")
    updates = await subscription.wait_updates()
    assert [(u.topic, u.value) for u in updates] == [("MSFT", "m")]


async def test_snapshot_then_latest_state_per_key_in_sequence_order() -> None:
    stream: StateStream[str] = StateStream()
    for value in ("a1", "a2"):
        stream.publish("AAPL", "AAPL", value)
    stream.publish("MSFT", "MSFT", "m1")
    _, start = stream.subscribe()
    assert start.snapshot is not None
    assert [(u.key, u.value, u.sequence) for u in start.snapshot] == [
        ("AAPL", "a2", 2),
        ("MSFT", "m1", 3),
    ]


async def test_resume_within_retention_then_replay_without_gaps() -> None:
    stream: StateStream[str] = StateStream(retention=100)
    for i in range(10):
        stream.publish("AAPL" if i % 2 else "MSFT", f"k{i % 2}", f"v{i}")
    _, start = stream.subscribe(resume_after=4)
    assert start.snapshot is None and not start.resync
    assert [u.sequence for u in start.replay] == [5, 6, 7, 8, 9, 10]


async def test_resume_older_than_retention_then_resync_snapshot() -> None:
    stream: StateStream[str] = StateStream(retention=3)
    for i in range(10):
        stream.publish("AAPL", "AAPL", f"v{i}")
    _, start = stream.subscribe(resume_after=2)
    assert start.resync and start.snapshot is not None
    assert [u.value for u in start.snapshot] == ["v9"]


async def test_resume_at_oldest_retained_boundary_then_no_gap() -> None:
    stream: StateStream[str] = StateStream(retention=3)
    for i in range(10):
        stream.publish("AAPL", f"k{i}", f"v{i}")
    _, start = stream.subscribe(resume_after=7)
    assert not start.resync and [u.sequence for u in start.replay] == [8, 9, 10]
    _, too_old = stream.subscribe(resume_after=6)
    assert too_old.resync


async def test_sequence_from_another_process_then_resync() -> None:
    earlier: StateStream[str] = StateStream(first_sequence=1_000)
    earlier.publish("AAPL", "AAPL", "x")
    later: StateStream[str] = StateStream(first_sequence=5_000)
    later.publish("AAPL", "AAPL", "y")
    _, start = later.subscribe(resume_after=earlier.sequence)
    assert start.resync


async def test_stalled_subscriber_then_conflated_per_key_and_bounded() -> None:
    stream: StateStream[str] = StateStream()
    stalled, _ = stream.subscribe()
    fast, _ = stream.subscribe()
    received = []
    for i in range(10_000):
        stream.publish(f"S{i % 50}", f"S{i % 50}", f"v{i}")
        received.extend(await fast.wait_updates())
    assert len(received) == 10_000
    assert stalled.backlog == 50
    backlog = await stalled.wait_updates()
    assert [u.value for u in backlog] == [f"v{i}" for i in range(9_950, 10_000)]
    assert all(u.conflated for u in backlog)
    sequences = [u.sequence for u in backlog]
    assert sequences == sorted(sequences)


async def test_closed_subscription_then_no_longer_fed_and_waiter_released() -> None:
    stream: StateStream[str] = StateStream()
    subscription, _ = stream.subscribe(["AAPL"])
    waiter = asyncio.create_task(subscription.wait_updates())
    await asyncio.sleep(0)
    subscription.close()
    assert await asyncio.wait_for(waiter, 1) == []
    stream.publish("AAPL", "AAPL", "x")
    assert stream.subscriber_count == 0
