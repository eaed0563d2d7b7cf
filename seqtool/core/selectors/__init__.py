"""Selectors: functions that turn a row of attention scores into weights, as a registry.

Every selector maps scores ``s`` of shape ``(..., n)`` to weights ``w`` of the same shape,
row by row along the last axis, and has a backward pass, the vector-Jacobian product
``g ↦ Jᵀ g`` with ``J = ∂w/∂s`` (for the surrogate selectors, the Jacobian of the soft map
that stands in for the hard one). Each is one :class:`Selector` entry in the registry
(:mod:`.registry`); the seven built-ins and their table are in :mod:`.builtin`, the maps
themselves in :mod:`.maps`.

    select("sparsemax", scores)                  # a Selection: weights, ties, vjp
    resolve_params("topk", n, {"k": None})       # {"k": 2, "temperature": 1.0}
    register_selector(Selector("uniform", ...))  # then usable everywhere by name
"""

from seqtool.core.selectors.maps import (
    ENTMAX_TOLERANCE, entmax, entmax15, entmax_bisect, entmax_vjp, gumbel_noise, masked_softmax,
    one_hot_argmax, softmax, softmax_vjp, sparsemax, sparsemax_vjp, topk_mask, topk_softmax,
)
from seqtool.core.selectors.registry import (
    GRADIENT_KINDS, Forward, Param, Selection, Selector, get_selector, register_selector,
    registered, resolve_params, select, selector_names, selector_parameters, unknown_message,
    unregister_selector, vector,
)
from seqtool.core.selectors.builtin import BUILTIN, DEFAULT_TOPK  # registers the built-ins

__all__ = [
    "BUILTIN", "DEFAULT_TOPK", "ENTMAX_TOLERANCE", "GRADIENT_KINDS", "Forward", "Param",
    "Selection", "Selector", "entmax", "entmax15", "entmax_bisect", "entmax_vjp",
    "get_selector", "gumbel_noise", "masked_softmax", "one_hot_argmax", "register_selector",
    "registered", "resolve_params", "select", "selector_names", "selector_parameters",
    "softmax", "softmax_vjp", "sparsemax", "sparsemax_vjp", "topk_mask", "topk_softmax",
    "unknown_message", "unregister_selector", "vector",
]
