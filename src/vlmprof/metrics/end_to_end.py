"""A run end to end on the host's clock, from its records' spans: each batch's wait for its
pages and its run, one after another, and how shards add up to the run's wall time.

The timing pass waits for a batch's pages (`wait_span_s`; each page's own load and
preprocessing is `host_span_s`), then does what only a measurement does (the shard's
warm-up, the gate's reference generation, the count of each page's work, the inputs' copy
to the device), then runs the batch (`run_span_s`), then runs it again for the later
repeats. A user's run of the same pages is each batch's wait and its first run, one after
another: a shard's wall time is that, from its first page read to its last token, with the
measurement's own work left out (the inputs' copy with it: no span covers it alone).
Shards on one device run one after another (a GPU slot holds one job at a time); devices
run at once, so the run's wall time is its busiest device's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# What the end-to-end figures count and leave out, as metrics.json states it beside them.
DEFINITION = (
    "the host's clock (the records' spans) from a shard's first page read to its last "
    "token: each batch's wait for its pages (their load and preprocessing inline, or what "
    "worker processes had not finished) and its first repeat's run, one after another; the "
    "measurement's own work between them is left out (warm-up, the gate's reference "
    "generation, the count of each page's work, the later repeats, and with them the inputs' "
    "copy to the device). Shards on one device add up; devices run at once, so the run's "
    "wall time is its busiest device's"
)


@dataclass(frozen=True)
class BatchTimes:
    """One batch's first repeat on the host clock (seconds): each page's load and
    preprocessing, the timing pass's wait for its pages, its run, and how many decode steps
    it ran."""

    shard: int | None
    device: str
    tokens: int
    host_s: tuple[tuple[float, float], ...]
    wait_s: tuple[float, float]
    run_s: tuple[float, float]
    decode_steps: int

    @property
    def pages(self) -> int:
        """Pages of the batch that ran."""
        return len(self.host_s)

    @property
    def wall_s(self) -> float:
        """What the batch took a user: its wait for its pages, then its run."""
        return (self.wait_s[1] - self.wait_s[0]) + (self.run_s[1] - self.run_s[0])

    def run_at_s(self, output_tokens: int, step_ms: float) -> float:
        """Its run had each page generated `output_tokens` tokens: the measured run plus (or
        less) the decode steps it lacks, at `step_ms` each."""
        extra_steps = output_tokens - 1 - self.decode_steps
        return self.run_s[1] - self.run_s[0] + extra_steps * step_ms / 1000.0

    def page_latencies_s(self, output_tokens: int, step_ms: float) -> list[float]:
        """Each page's latency at `output_tokens` tokens: its own load and preprocessing,
        the batch's wait for its pages after that (the pages read after it), and the
        batch's run. A page a worker process read ahead waits the whole wait."""
        wait_start, wait_end = self.wait_s
        run = self.run_at_s(output_tokens, step_ms)
        return [
            (end - start) + max(0.0, wait_end - max(end, wait_start)) + run
            for start, end in self.host_s
        ]


def device_of(record: dict[str, Any]) -> str:
    """The device a record ran on: its GPU's UUID, else its device name."""
    placement = record.get("placement") or {}
    return str(placement.get("gpu_uuid") or placement.get("device") or record.get("device"))


def _timed_first_runs(records: Sequence[dict[str, Any]]) -> dict[tuple[Any, ...], list]:
    """The ok records of each batch's first repeat that kept their spans, by shard and run."""
    batches: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        spans = (record.get(key) for key in ("host_span_s", "wait_span_s", "run_span_s"))
        if record.get("status", "ok") == "ok" and record.get("repeat") == 0 and all(spans):
            batches[(record.get("shard"), *record["run_span_s"])].append(record)
    return batches


def batch_times(records: Sequence[dict[str, Any]]) -> list[BatchTimes]:
    """Each batch's first repeat whose ok records kept their host-clock spans, in the order
    they ran; empty for records from before the spans were kept."""
    batches = []
    for pages in _timed_first_runs(records).values():
        first = pages[0]
        batches.append(
            BatchTimes(
                shard=first.get("shard"),
                device=device_of(first),
                tokens=sum(int(page.get("tokens") or 0) for page in pages),
                host_s=tuple((p["host_span_s"][0], p["host_span_s"][1]) for p in pages),
                wait_s=(
                    min(p["wait_span_s"][0] for p in pages),
                    max(p["wait_span_s"][1] for p in pages),
                ),
                run_s=(first["run_span_s"][0], first["run_span_s"][1]),
                decode_steps=len(first.get("decode_step_ms") or []),
            )
        )
    return sorted(batches, key=lambda batch: (str(batch.shard), batch.run_s[0]))


def _shard_wall(
    shard: int | None, batches: list[BatchTimes], last_token_s: float
) -> dict[str, Any]:
    """A shard's figures: its batches' walls summed from its first page read (a worker may
    read before the first wait begins), and the time from that read to its last token."""
    first_read = min(min(start for start, _ in b.host_s + (b.wait_s,)) for b in batches)
    head = max(0.0, batches[0].wait_s[0] - first_read)
    return {
        "shard": shard,
        "device": batches[0].device,
        "pages": sum(b.pages for b in batches),
        "tokens": sum(b.tokens for b in batches),
        "wall_s": head + sum(b.wall_s for b in batches),
        "elapsed_s": last_token_s - first_read,
    }


def end_to_end(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """metrics.json's `aggregates.end_to_end`: each shard's pages, tokens and wall time
    (`DEFINITION`), the run's wall time (its busiest device's: devices run at once, a
    device's shards one after another) and the device time (every shard's summed, what a
    per-device rate divides by). None when no batch kept its spans."""
    by_shard: dict[Any, list[BatchTimes]] = defaultdict(list)
    for batch in batch_times(records):
        by_shard[batch.shard].append(batch)
    if not by_shard:
        return None
    last_token: dict[Any, float] = defaultdict(float)
    for record in records:
        if record.get("status", "ok") == "ok" and record.get("run_span_s"):
            shard = record.get("shard")
            last_token[shard] = max(last_token[shard], float(record["run_span_s"][1]))
    shards = [_shard_wall(s, batches, last_token[s]) for s, batches in by_shard.items()]
    per_device: dict[str, float] = defaultdict(float)
    for shard in shards:
        per_device[shard["device"]] += shard["wall_s"]
    return {
        "pages": sum(s["pages"] for s in shards),
        "tokens": sum(s["tokens"] for s in shards),
        "wall_s": max(per_device.values()),
        "device_s": sum(per_device.values()),
        "devices": len(per_device),
        "shards": shards,
    }
