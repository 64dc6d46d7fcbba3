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

import hashlib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

from ..persistence import atomic_write_text

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


def source_digest(paths: Iterable[os.PathLike | str]) -> str:
    """SHA-256 of the files' names and contents (a missing file counts as empty)."""
    h = hashlib.sha256()
    for path in paths:
        path = Path(path)
        h.update(path.name.encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            pass
        h.update(b"\0")
    return h.hexdigest()


def _probe() -> None:
    """A function for numba's locators, which read only its first line number."""


def cache_dirs(py_files: Iterable[os.PathLike | str]) -> set[Path]:
    """The directories numba caches the functions of these source files in, found by
    numba's own locators (the first that accepts a file, in numba's order)."""
    from numba.core import caching

    locators = getattr(caching.CacheImpl, "_locator_classes", None) or [
        caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
        caching.UserWideCacheLocator]
    dirs = set()
    for py_file in py_files:
        for cls in locators:
            locator = cls.from_function(_probe, str(py_file))
            if locator is not None:
                dirs.add(Path(locator.get_cache_path()))
                break
    return dirs


def _remove_caches(cache_dir: Path, modules: Iterable[str]) -> tuple[list[Path], bool]:
    """Delete ``<module>.*.nbi``/``.nbc`` in ``cache_dir``; ``(removed, all_gone)``."""
    removed, ok = [], True
    for module in modules:
        for pattern in (f"{module}.*.nbi", f"{module}.*.nbc"):
            for path in cache_dir.glob(pattern):
                try:
                    path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass  # another process got there first
                except OSError:
                    ok = False
    return removed, ok


def check(sources: Iterable[os.PathLike | str], modules: Iterable[str],
          dirs: Iterable[os.PathLike | str]) -> list[Path]:
    """Clear the caches of ``modules`` in every directory of ``dirs`` whose stamp is not
    the digest of ``sources``, and stamp it; returns the files removed.

    Raises OSError if a directory cannot be read or its stamp written (:func:`guard`
    does not).
    """
    digest = source_digest(sources)
    modules = list(modules)
    removed: list[Path] = []
    for cache_dir in dirs:
        stamp = Path(cache_dir) / STAMP_NAME
        try:
            if stamp.read_text() == digest:
                continue
        except OSError:
            pass  # no stamp yet: caches of unknown origin
        gone, ok = _remove_caches(Path(cache_dir), modules)
        removed += gone
        if ok:
            atomic_write_text(stamp, digest)
    return removed


def guard() -> list[Path]:
    """:func:`check` for the installed kernels; never raises (a failure only means that
    stale caches are not cleared, as without the guard)."""
    try:
        sources = dependencies()
        here = sources[0].parent
        return check(sources, KERNEL_MODULES,
                     cache_dirs(here / f"{name}.py" for name in KERNEL_MODULES))
    except Exception:  # noqa: BLE001 - importing the kernels must not fail because of this
        return []
