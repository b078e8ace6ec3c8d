"""Memory readings of the current process, for the peak-RSS and flatness children: VmRSS and
its high-water mark, the C heap in use (glibc mallinfo2), and RSS split between glibc's
per-thread arenas and the rest.

Linux only (/proc, glibc); each reading says ``None`` where it cannot be taken.
"""

from __future__ import annotations

from typing import Any


def rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB, from /proc (Linux)."""
    rss = hwm = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def malloc_in_use_kib() -> int | None:
    """Bytes the C heap has handed out (glibc mallinfo2: uordblks + hblkhd), KiB; None where
    unavailable. Flat while RSS grows means fragmentation or a high-water mark, not a leak."""
    global _MALLINFO2
    if _MALLINFO2 is None:
        try:
            import ctypes

            class _Info(ctypes.Structure):
                _fields_ = [(name, ctypes.c_size_t) for name in (
                    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                    "uordblks", "fordblks", "keepcost")]

            fn = ctypes.CDLL(None).mallinfo2
            fn.restype = _Info
            _MALLINFO2 = fn
        except (OSError, AttributeError):
            _MALLINFO2 = False
    if not _MALLINFO2:
        return None
    info = _MALLINFO2()
    return (info.uordblks + info.hblkhd) // 1024


_MALLINFO2: Any = None

_ARENA_ALIGN = 64 * 1024 * 1024


def rss_split_kib() -> tuple[int, int] | None:
    """(RSS in glibc's per-thread arenas, all other RSS), KiB, from /proc/self/smaps; None
    where unreadable. A thread arena is an anonymous mapping that starts on a 64 MiB boundary
    (glibc's heap size on 64-bit): librdkafka's broker threads allocate their request
    buffers there, so a larger request than any before raises RSS without a leak."""
    arenas = other = 0
    in_arena = False
    try:
        with open("/proc/self/smaps") as smaps:
            for line in smaps:
                first = line.split(None, 6)
                if "-" in first[0] and len(first) >= 5 and ":" in first[3]:
                    start = int(first[0].split("-", 1)[0], 16)
                    in_arena = len(first) == 5 and start % _ARENA_ALIGN == 0
                elif first[0] == "Rss:":
                    if in_arena:
                        arenas += int(first[1])
                    else:
                        other += int(first[1])
    except OSError:
        return None
    return arenas, other

