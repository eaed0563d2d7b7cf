"""What the benchmarks print about the machine: which BLAS NumPy and torch use, and the
environment variables that change it. Shared by the benchmark scripts."""

from __future__ import annotations

import os
import time

import numpy as np


def blas_report() -> list[str]:
    """Which BLAS NumPy and torch use, and warnings about the environment."""
    lines = []
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"NumPy/SciPy BLAS: {info.get('internal_api')} "
                             f"{info.get('version')}, architecture "
                             f"{info.get('architecture', '?')}, threads "
                             f"{info.get('num_threads')} ({os.path.basename(info['filepath'])})")
    except ImportError:
        lines.append("threadpoolctl is not installed: NumPy's BLAS architecture unknown")
    from seqtool.core.rnn import blas, numpy_blas

    lines.append(f"seqtool kernels' BLAS: {blas.describe()}"
                 + (f": {numpy_blas.library_config()}" if numpy_blas.library_config() else ""))
    import torch

    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        cap = "?"
    lines.append(f"torch CPU capability: {cap}; MKL: {torch.backends.mkl.is_available()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            lines.append(f"WARNING: {var}={os.environ[var]} is set: OpenBLAS may not use the "
                         f"best kernels for this CPU; run under `env -u OPENBLAS_CORETYPE "
                         f"-u OPENBLAS_L2_SIZE`")
    return lines


def cpu_name() -> str:
    """The CPU's model name, family and model numbers (a VM often shows only "AMD EPYC")
    and its widest vector instructions."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not line.strip():
                    break
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    import platform

    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    vectors = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags
               else "AVX" if "avx" in flags else "")
    numbers = (f"family {fields['cpu family']} model {fields['model']}"
               if "cpu family" in fields and "model" in fields else "")
    return ", ".join(part for part in (name, numbers, vectors) if part)


def cpu_model() -> str:
    """cpu_name() and how many CPUs the process may use."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return f"CPU: {cpu_name()}, {usable} usable CPUs"



def peak_gflops(dtype, n: int = 2048, repeats: int = 3) -> float:
    """NumPy's best matmul rate on one core, GFLOP/s: (n, n) @ (n, n), the fastest of
    ``repeats`` (the ceiling of any product the benchmarks time)."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9
