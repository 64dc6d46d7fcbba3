"""Clear stale on-disk caches of the compiled kernels when a source they depend on changes.

numba checks a cached kernel against the source file it is defined in only (a content
hash of that file). The kernels inline helpers from other files (:mod:`._blas`,
:mod:`._small`, :mod:`.activations`) and read compile-time constants from others again (:mod:`.plan`,
and through it the nonlinearity codes in :mod:`hfcontrol.nonlinearities`): after an edit
of one of those, the caches of :mod:`.forward` and :mod:`.curvature` would still load,
with the old code inlined.

:func:`guard` runs when :mod:`hfcontrol.kernels` is imported, before any kernel is called
(numba reads a cache at a kernel's first call). It hashes the sources of every kernel
module and of what they read at compile time, and compares the digest with a stamp file
kept beside the cache; when they differ it deletes the cached ``*.nbi``/``*.nbc`` files of
the kernel modules and writes the new stamp (atomically: a temporary file renamed over
it). The cache directory is found by numba's own locators, in numba's order: the
``NUMBA_CACHE_DIR`` if set, else the ``__pycache__`` beside the source if writable, else
the user-wide cache directory. The guard never raises: a read-only directory, a missing
file or another process clearing the same cache at the same time only means that a
kernel is compiled again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from plants._cache_guard import cache_dirs, check, source_digest  # noqa: F401 - re-exported

#: The kernel modules whose caches are cleared (their cached functions inline the others).
KERNEL_MODULES = ("_blas", "_small", "activations", "forward", "curvature", "plan", "closed_loop")
#: Where the stamp is kept, in each cache directory.
STAMP_NAME = "hfcontrol-kernels.stamp"


def dependencies() -> list[Path]:
    """The sources the compiled kernels are built from: the kernel modules,
    :mod:`hfcontrol.nonlinearities` (the nonlinearity codes), and the plants' compiled
    steps, which :mod:`.closed_loop` calls by name (every ``.py`` file of ``plants``
    whose name starts with an underscore: the kernels and what they inline)."""
    here = Path(__file__).resolve().parent
    paths = [here / f"{name}.py" for name in KERNEL_MODULES] + [here.parent / "nonlinearities.py"]
    spec = importlib.util.find_spec("plants")
    if spec is not None and spec.origin is not None:
        paths += sorted(Path(spec.origin).parent.glob("_*.py"))
    return paths


def guard() -> list[Path]:
    """:func:`check` for the installed kernels; never raises (a failure only means that
    stale caches are not cleared, as without the guard)."""
    try:
        sources = dependencies()
        here = sources[0].parent
        return check(sources, KERNEL_MODULES,
                     cache_dirs(here / f"{name}.py" for name in KERNEL_MODULES), STAMP_NAME)
    except Exception:  # noqa: BLE001 - importing the kernels must not fail because of this
        return []
