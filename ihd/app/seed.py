"""Seed the demo's history, so that the first start already has a month to look back on.

The seeded readings are exactly what the simulated meters would have pushed (the same
register values at the same times) and go through the same ``Ingest.accept`` as live
frames, so deltas, pricing and rollups are computed by the code under demonstration. Only
the radio hop is skipped: a month of 10 s pushes through DLMS encoding and the air would
make the first start slow for nothing. For the same reason, days older than
``fine_s`` keep one electricity push a minute instead of six (usage per minute is the same;
only the raw register series is sparser).
"""

from __future__ import annotations

import heapq
import logging

from ihd.app.ingest import Ingest
from ihd.meter.reading import Reading
from ihd.sim.world import SimWorld
from ihd.store import Batch, MeterInfo, Store, Usage

log = logging.getLogger("ihd.seed")


def seed_history(
    world: SimWorld,
    store: Store,
    ingest: Ingest,
    *,
    start: float,
    end: float,
    fine_s: float = 2 * 86400,
    coarse_interval_s: float = 60.0,
    chunk_s: float = 6 * 3600,
) -> int:
    """Write the pushes of ``world``'s meters in (start, end] to ``store``; returns readings."""
    fine_from = max(start, end - fine_s)
    streams = []
    for i, m in enumerate(world.meters):
        stride = max(1, round(coarse_interval_s / m.interval_s))
        times = m.push_times(start, fine_from)[::stride] + m.push_times(fine_from, end)
        streams.append([(t, i) for t in times])
    n = 0
    readings: list[Reading] = []
    usage: list[Usage] = []
    meters: dict[str, MeterInfo] = {}
    state: dict[str, str] = {}
    chunk_end = start + chunk_s
    for t, i in heapq.merge(*streams):
        if t > chunk_end:
            n += _flush(store, readings, usage, meters, state)
            chunk_end = t + chunk_s
        meter = world.meters[i]
        batch = ingest.accept(meter.device, meter.readings(t), seen_at=t)
        readings.extend(batch.readings)
        usage.extend(batch.usage)
        state.update(batch.state)  # the latest pricer totals, with the usage they priced
        for info in batch.meters:
            meters[info.eui64] = info
    n += _flush(store, readings, usage, meters, state)
    return n


def _flush(
    store: Store,
    readings: list[Reading],
    usage: list[Usage],
    meters: dict[str, MeterInfo],
    state: dict[str, str],
) -> int:
    n = len(readings)
    if n or usage:
        store.write_now(
            Batch(readings=readings, usage=usage, meters=list(meters.values()), state=state)
        )
    readings.clear()
    usage.clear()
    state.clear()
    return n
