"""Which allocator Arrow uses for one piece of work.

Arrow's default pool (mimalloc) keeps the pages of every buffer it freed, so a process that
streams table after table through Arrow creeps up in RSS. Measured on the 2M-row bench database:
backing up with jemalloc peaks at ~340 MB against ~400 MB with mimalloc (malloc: ~377 MB); the
restore's loaders and the checks' key columns do best with malloc. Buffers remember the pool
they came from, so switching back afterwards is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa


def _pool(name: str) -> pa.MemoryPool:
    if name == "jemalloc":
        try:
            return pa.jemalloc_memory_pool()
        except NotImplementedError:  # a pyarrow build without jemalloc
            return pa.system_memory_pool()
    return pa.system_memory_pool()


@contextmanager
def arrow_pool(name: str) -> Iterator[None]:
    """Allocate Arrow memory from `name` ("system" or "jemalloc") inside the block."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(_pool(name))
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
