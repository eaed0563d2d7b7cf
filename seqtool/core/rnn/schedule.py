"""The step schedule of a padded batch (seqtool.core.rnn.lengths.step_schedule) in one
kernel call: its checks, the active rows of every step and the real steps' flat rows. A
schedule is made for every new batch; as a dozen NumPy calls it took ~80 µs of a training
step (two layers' worth, Zen 4: cold caches between them), as one call ~10.
seqtool.core.rnn.lengths imports this module when it first makes a schedule (it imports
no numba itself).
"""

from __future__ import annotations

from seqtool.core.rnn.jit import kernel

LONGEST_FIRST = 1  # statuses of schedule_into: the lengths do not come longest first
OUT_OF_RANGE = 2  # ... or lie outside 0..T


@kernel
def schedule_into(lengths, T, gather_below, active, rows):
    """For lengths (B,) int64, longest first, within 0..T: active[t] = #{b : ℓ_b > t}
    (T,), and, when Σ ℓ_b < gather_below · T · B, rows[:Σ ℓ_b] = t·B + b for b < active[t]
    in step order. Returns (status, n): status 0, LONGEST_FIRST or OUT_OF_RANGE (nothing
    written then), and n = Σ ℓ_b rows written, or −1 for none (nearly every step real)."""
    B = lengths.shape[0]
    for b in range(B - 1):
        if lengths[b + 1] > lengths[b]:
            return LONGEST_FIRST, -1
    if B > 0 and (lengths[B - 1] < 0 or lengths[0] > T):
        return OUT_OF_RANGE, -1
    total = 0
    for b in range(B):
        total += lengths[b]
    b = B
    for t in range(T):
        while b > 0 and lengths[b - 1] <= t:
            b -= 1
        active[t] = b
    if not total < gather_below * T * B:
        return 0, -1
    n = 0
    for t in range(T):
        for b in range(active[t]):
            rows[n] = t * B + b
            n += 1
    return 0, n
