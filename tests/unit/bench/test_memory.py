"""The comparison harness's memory readings (``waterdrop._bench.memory``): the RSS split by
glibc thread arena adds up to the process's RSS."""

from __future__ import annotations

import pytest

from waterdrop._bench import memory

pytestmark = pytest.mark.timeout(180)


def _asan_loaded() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return "libasan" in maps.read()
    except OSError:
        return False


# ci/sanitize preloads ASan's runtime: its malloc replaces glibc's, so the split (glibc's thread
# arenas) does not describe that process, and ASan's shadow and quarantine move RSS on their own
@pytest.mark.skipif(_asan_loaded(), reason="ASan's allocator replaces glibc's (ci/sanitize)")
def test_rss_split_adds_up_to_the_process_rss():
    split = memory.rss_split_kib()
    assert split is not None
    arenas, other = split
    rss = memory.rss_kib()[0]
    assert arenas >= 0 and other > 0
    # two reads a moment apart: equal but for pages touched in between
    assert abs(arenas + other - rss) <= max(512, rss // 50)
