"""The vector registers of the CPU that numba compiles for, as the kernels written in LLVM IR
(seqtool.core.rnn.products' tiles, seqtool.core.rnn.transpose's blocks) size themselves by,
and the small IR helpers both use.
The kernels' cache stamp covers this file, as every file under seqtool/core/rnn that names
seqtool.core.rnn.jit (see kernel_modules there)."""

from __future__ import annotations

from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import config, types


def host_vector_registers() -> tuple[int, int]:
    """(bytes per vector register, number of vector registers) of the CPU numba compiles for."""
    features = config.CPU_FEATURES
    if not features:
        if config.CPU_NAME and config.CPU_NAME != "host":
            return 16, 16  # a portable target (e.g. "generic"): assume only SSE2 / NEON
        features = llvm_binding.get_host_cpu_features().flatten()
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 64, 32
    if "avx" in enabled:
        return 32, 16
    if "neon" in enabled:
        return 16, 32
    return 16, 16


REGISTER_BYTES, REGISTERS = host_vector_registers()
# LLVM 17 dropped typed pointers (llvmlite ≥ 0.45, numba ≥ 0.62), which renames intrinsics
OPAQUE_POINTERS = llvm_binding.llvm_version_info[0] >= 17


def element_type(dtype):
    """The LLVM type of a float32 or float64 array element (None for any other)."""
    return {types.float32: ir.FloatType(), types.float64: ir.DoubleType()}.get(dtype)


def as_int64(builder, value):
    """An LLVM integer ``value`` widened (sign-extended) to 64 bits: indices for address
    arithmetic."""
    if value.type.width < 64:
        return builder.sext(value, ir.IntType(64))
    return value
