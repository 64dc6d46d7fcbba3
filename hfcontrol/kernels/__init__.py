"""Numba-compiled forward pass, gradient and Gauss-Newton product for FFNet and RNNet.

A subpackage split by job (``docs/performance.md`` has the table):

* :mod:`._blas` -- views of the flat buffers (the ``_view`` intrinsic) and BLAS products;
* :mod:`.activations` -- element-wise nonlinearities and their Jacobians;
* :mod:`.forward` -- the forward pass, and the layout of a partition's work buffer;
* :mod:`.curvature` -- R-forward and backward passes: gradient and ``G v``;
* :mod:`.plan` -- the array description of a network, and the codes the kernels branch on;
* :mod:`.runner` -- batch partitions on threads, buffers, thread control;
* :mod:`.batch` -- a cached minibatch and what ``G v`` needs prepared once for it;
* :mod:`._cache_guard` -- clears stale on-disk caches when a kernel's dependencies change.

Losses are not compiled: they have no time loop and are evaluated by vectorised NumPy
over whole arrays.
"""

from ._cache_guard import guard as _guard

# before any kernel is called (numba reads a kernel's cache at its first call)
_guard()

from .batch import CompiledBatch  # noqa: E402
from .plan import Plan, compilable, init_block, layer_params, plan_for, windows_array  # noqa: E402
from .runner import LayerArrays, Runner, get_num_threads, set_num_threads, thread_info  # noqa: E402

__all__ = ["CompiledBatch", "LayerArrays", "Plan", "Runner", "compilable", "get_num_threads",
           "init_block", "layer_params", "plan_for", "set_num_threads", "thread_info",
           "windows_array"]
