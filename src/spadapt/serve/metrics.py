"""Server metrics in the Prometheus text format (version 0.0.4), written by hand.

Counters and histograms live here, updated from the event loop (requests) and from the model
worker thread (batches), under one lock. Values owned elsewhere (resident adapters, cache hits)
are passed to `render` as samples, so there is one source of truth for each number.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ADAPTER_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket (not cumulative), then +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {cumulative}')
        brace = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{brace} {self.total}", f"{name}_count{brace} {self.count}"]
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts and latencies, batch sizes and adapters per batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, Histogram] = {}
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.batch_adapters = Histogram(ADAPTER_BUCKETS)
        self.mixed_batches = 0  # forwards whose rows used two or more adapters
        self.max_batch_adapters = 0

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, rows: int, adapters: int) -> None:
        """One forward (or generate) over `rows` rows routed to `adapters` distinct adapters."""
        with self._lock:
            self.batch_rows.observe(rows)
            self.batch_adapters.observe(adapters)
            self.mixed_batches += adapters >= 2
            self.max_batch_adapters = max(self.max_batch_adapters, adapters)

    def render(self, samples: list[tuple[str, str, str, float]]) -> str:
        """The exposition text; `samples`: extra (name, type, help, value) without labels."""
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

        with self._lock:
            family("spadapt_requests_total", "counter", "HTTP requests by route, method, status.")
            for (route, method, status), count in sorted(self.requests.items()):
                out.append(f'spadapt_requests_total{{route="{_escape(route)}",method="{method}",'
                           f'status="{status}"}} {count}')
            family("spadapt_request_latency_seconds", "histogram",
                   "Time from request arrival to response, by route.")
            for route, histogram in sorted(self.latency.items()):
                out += histogram.lines("spadapt_request_latency_seconds",
                                       f'route="{_escape(route)}"')
            family("spadapt_batch_size", "histogram", "Rows per model forward.")
            out += self.batch_rows.lines("spadapt_batch_size", "")
            family("spadapt_batch_adapters", "histogram", "Distinct adapters per model forward.")
            out += self.batch_adapters.lines("spadapt_batch_adapters", "")
            family("spadapt_mixed_batches_total", "counter",
                   "Forwards whose rows were routed to two or more adapters.")
            out.append(f"spadapt_mixed_batches_total {self.mixed_batches}")
            family("spadapt_batch_adapters_max", "gauge", "Most adapters seen in one forward.")
            out.append(f"spadapt_batch_adapters_max {self.max_batch_adapters}")
        for name, kind, text, value in samples:
            family(name, kind, text)
            out.append(f"{name} {value}")
        return "\n".join(out) + "\n"


def parse_text(text: str) -> dict[str, float]:
    """Sample name (with labels, as written) -> value; for tests and the load test."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values
