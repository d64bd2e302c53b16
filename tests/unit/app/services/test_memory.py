"""release_freed_memory: the C heap's freed pages go back to the system (glibc), so an idle API does not keep
its warm-up's peak."""

from __future__ import annotations

import ctypes.util
import platform

import psutil
import pytest

from app.services.memory import release_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or ctypes.util.find_library("c") is None, reason="glibc only")
def test_freed_heap_pages_are_returned() -> None:
    me = psutil.Process()
    release_freed_memory()
    # 150k blocks of 2 KiB (above pymalloc's 512-byte limit: glibc's heap), one in 64 kept: the kept ones pin
    # the heap's top, so glibc does not shrink it by itself and the freed pages between them stay resident
    blocks = [bytes(2048) for _ in range(150_000)]
    kept = blocks[::64]
    del blocks
    before = me.memory_info().rss
    assert release_freed_memory() is True
    after = me.memory_info().rss
    assert before - after > 200 * 2**20  # ~300 MB were freed; most of it is given back
    assert len(kept) == 2_344
