"""The cache's counters as Prometheus metrics, for the monitoring endpoint to serve.

    registry = CollectorRegistry()
    register_cache_metrics(cache, registry)          # or the default REGISTRY
    generate_latest(registry)                        # azora_cache_hits_total 1234.0 ...

The collector reads :class:`~azora.cache.core.CacheMetrics` at scrape time, so the hot
path keeps plain integer counters and pays nothing for the export.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from azora.cache.core import Cache

_COUNTERS = (
    ("hits", "lookups answered without calling the loader (local hits included)"),
    ("local_hits", "lookups answered by the in-process layer"),
    ("misses", "lookups that found no entry"),
    ("loads", "loader calls"),
    ("errors", "cache calls that failed or timed out"),
    ("refused_fills", "loads not stored because the key was invalidated meanwhile"),
    ("waits", "misses that waited for another process's load"),
    ("bypassed", "lookups sent to the loader because the cache was unavailable"),
    ("coalesced", "lookups that shared a concurrent lookup in this process"),
)


class CacheCollector(Collector):
    """Exports the counters, hit ratio, latency and breaker state of named caches."""

    def __init__(self) -> None:
        self._caches: dict[str, Cache] = {}

    def add(self, name: str, cache: Cache) -> None:
        """Export ``cache`` with the label ``cache=name``.

        Raises:
            ValueError: a cache of that name is exported already.
        """
        if name in self._caches:
            raise ValueError(f"a cache named {name!r} is registered already")
        self._caches[name] = cache

    def collect(self) -> Iterator[Metric]:
        """The metrics as of now (called by the registry at each scrape)."""
        caches = sorted(self._caches.items())
        for field, documentation in _COUNTERS:
            family = CounterMetricFamily(f"azora_cache_{field}", documentation, labels=["cache"])
            for name, cache in caches:
                family.add_metric([name], getattr(cache.metrics, field))
            yield family
        ratio = GaugeMetricFamily(
            "azora_cache_hit_ratio", "hits over lookups since start", labels=["cache"]
        )
        latency = SummaryMetricFamily(
            "azora_cache_get_seconds", "duration of get_or_load calls", labels=["cache"]
        )
        breaker = GaugeMetricFamily(
            "azora_cache_breaker_open", "1 while the circuit breaker is open", labels=["cache"]
        )
        for name, cache in caches:
            metrics = cache.metrics
            ratio.add_metric([name], metrics.hit_ratio)
            latency.add_metric([name], count_value=metrics.gets, sum_value=metrics.get_seconds)
            breaker.add_metric([name], 1.0 if cache.breaker.is_open else 0.0)
        yield from (ratio, latency, breaker)


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, CacheCollector] = (
    weakref.WeakKeyDictionary()
)


def register_cache_metrics(
    cache: Cache, registry: CollectorRegistry, name: str = "default"
) -> None:
    """Export ``cache``'s metrics, labelled ``cache=name``, from ``registry``.

    Raises:
        ValueError: a cache of that name is registered in ``registry`` already.
    """
    collector = _collectors.get(registry)
    if collector is None:
        collector = _collectors[registry] = CacheCollector()
        registry.register(collector)
    collector.add(name, cache)
