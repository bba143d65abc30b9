"""Server metrics for `GET /metrics`, kept and written by `prometheus_client`.

Each app has its own `CollectorRegistry` (never the library's global one), so several servers
in one process do not share or collide. Counters and histograms are updated from the event
loop (requests) and from the model worker thread (batches); prometheus_client's metrics are
thread-safe. Values owned elsewhere (resident adapters, cache hits, queued rows) are read from
their owners at scrape time (`watch`), so there is one source of truth for each number.

Names as exposed: counters end in `_total` and, as prometheus_client writes them, come with a
`_created` timestamp sample; labels are written in alphabetical order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ADAPTER_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)
CONTENT_TYPE = CONTENT_TYPE_LATEST  # of the text `Metrics.render` returns


class _Watched:
    """A prometheus_client collector of values read from their owners when scraped."""

    def __init__(self) -> None:
        self.readings: list[tuple[str, str, str, Callable[[], float]]] = []

    def collect(self) -> Iterator[Metric]:
        for name, kind, text, read in self.readings:
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, text, value=read())


class Metrics:
    """Request counts and latencies, batch sizes and adapters per batch, and watched values."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter("spadapt_requests", "HTTP requests by route, method, status.",
                                 ("route", "method", "status"), registry=self.registry)
        self._latency = Histogram("spadapt_request_latency_seconds",
                                  "Time from request arrival to response, by route.", ("route",),
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._batch_rows = Histogram("spadapt_batch_size", "Rows per model forward.",
                                     buckets=BATCH_BUCKETS, registry=self.registry)
        self._batch_adapters = Histogram("spadapt_batch_adapters",
                                         "Distinct adapters per model forward.",
                                         buckets=ADAPTER_BUCKETS, registry=self.registry)
        self._mixed_batches = Counter("spadapt_mixed_batches", "Forwards whose rows were "
                                      "routed to two or more adapters.", registry=self.registry)
        self._max_adapters = Gauge("spadapt_batch_adapters_max",
                                   "Most adapters seen in one forward.", registry=self.registry)
        self._max_lock = threading.Lock()  # a read-then-set on the gauge above
        self._max_seen = 0
        self._watched = _Watched()
        self.registry.register(self._watched)

    def watch(self, name: str, kind: str, text: str, read: Callable[[], float]) -> None:
        """Expose `read()` as metric `name` ("counter" or "gauge"), read at every scrape.

        A counter's `name` ends in `_total`, as it is exposed.
        """
        self._watched.readings.append((name, kind, text, read))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def observe_batch(self, rows: int, adapters: int) -> None:
        """One forward (or generate) over `rows` rows routed to `adapters` distinct adapters."""
        self._batch_rows.observe(rows)
        self._batch_adapters.observe(adapters)
        if adapters >= 2:
            self._mixed_batches.inc()
        with self._max_lock:
            if adapters > self._max_seen:
                self._max_seen = adapters
                self._max_adapters.set(adapters)

    def render(self) -> bytes:
        """The exposition text (`CONTENT_TYPE`) of every metric of this server."""
        return generate_latest(self.registry)


def parse_text(text: str) -> dict[str, float]:
    """Sample -> value from exposition text; for tests and the load test.

    A sample is written `name{label="value",...}` with its labels in alphabetical order (as
    prometheus_client writes them), or `name` when it has none.
    """
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{_escape(value)}"'
                              for key, value in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
