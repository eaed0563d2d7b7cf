"""What a run may take of the machine: memory it can have, checked before allocating.

A size that cannot fit (``bptt --input-size 1000000000``) must be refused in one line
naming the flag, not met with a MemoryError (or the swap) half-way through. Commands
estimate the bytes a run needs from its sizes and call :func:`check_memory` first.
"""

from __future__ import annotations

import os

from seqtool.core.errors import InputError

# When the machine cannot say (no /proc/meminfo, no sysconf): assume this much is free.
UNKNOWN_AVAILABLE = 8 << 30


def available_bytes() -> int:
    """The memory a new allocation can have now: Linux's MemAvailable, else the free
    physical pages, else UNKNOWN_AVAILABLE."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return UNKNOWN_AVAILABLE


def size_text(n: float) -> str:
    """Bytes as a short human figure: 812 MB, 7.5 GB, 3.2 TB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{int(n)} bytes"


def check_memory(flag: str, needed: float, what: str,
                 available: int | None = None) -> None:
    """InputError naming ``flag`` if ``needed`` bytes (the estimate for ``what``) exceed
    what the machine has available."""
    have = available_bytes() if available is None else available
    if needed > have:
        raise InputError(flag, f"makes {what} need about {size_text(needed)}; this machine "
                         f"has {size_text(have)} available")


__all__ = ["available_bytes", "check_memory", "size_text"]
