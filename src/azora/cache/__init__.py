"""The cache: cache-aside reads over Redis or memory, never stale after a write."""

from azora.cache.core import Cache, CacheKey, CacheMetrics, KeySpace, open_cache
from azora.cache.local import LocalLayer

__all__ = ["Cache", "CacheKey", "CacheMetrics", "KeySpace", "LocalLayer", "open_cache"]
