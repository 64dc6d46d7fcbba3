"""Clear stale on-disk caches of compiled kernels when a source they depend on changes.

numba checks a cached kernel against the source file it is defined in only (a content
hash of that file). The plants' kernels inline right-hand sides, integrators and layout
constants from other files (``plants/_dyn_*.py``, ``_integrate.py``, ``_layout.py``, the
environments' ``envs/_step.py`` calls the steppers by name): after an edit of one of those,
the caches of the files that inline it would still load, with the old code inside.

:func:`guard` runs when :mod:`plants` is imported, before any kernel is called (numba
reads a cache at a kernel's first call). It hashes every compiled source of the package
and compares the digest with a stamp file kept beside the cache; when they differ it
deletes the cached ``*.nbi``/``*.nbc`` files of those modules and writes the new stamp
(atomically). The cache directories are found by numba's own locators, in numba's order.
The guard never raises: a read-only directory or another process clearing the same cache
only means that a kernel is compiled again. :func:`check` and :func:`cache_dirs` are
shared with ``hfcontrol``'s guard of its own kernels.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["guard", "check", "cache_dirs", "source_digest", "kernel_sources"]

#: Where the stamp is kept, in each cache directory.
STAMP_NAME = "plants-kernels.stamp"


def kernel_sources() -> list[Path]:
    """The compiled sources of :mod:`plants`: the private modules (names starting with an
    underscore), in the package and in :mod:`plants.envs`, that use numba (the kernels and
    what they inline)."""
    here = Path(__file__).resolve().parent
    paths = sorted(here.glob("_*.py")) + sorted((here / "envs").glob("_*.py"))
    return [p for p in paths if p.name != "__init__.py" and _uses_numba(p)]


def _uses_numba(path: Path) -> bool:
    try:
        return "numba" in path.read_text()
    except OSError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
          dirs: Iterable[os.PathLike | str], stamp_name: str) -> list[Path]:
    """Clear the caches of ``modules`` in every directory of ``dirs`` whose stamp is not
    the digest of ``sources``, and stamp it; returns the files removed.

    ``stamp_name``: the stamp file kept in each directory. Raises OSError if a directory
    cannot be read or its stamp written (the guards do not).
    """
    digest = source_digest(sources)
    modules = list(modules)
    removed: list[Path] = []
    for cache_dir in dirs:
        stamp = Path(cache_dir) / stamp_name
        try:
            if stamp.read_text() == digest:
                continue
        except OSError:
            pass  # no stamp yet: caches of unknown origin
        gone, ok = _remove_caches(Path(cache_dir), modules)
        removed += gone
        if ok:
            _write_atomically(stamp, digest)
    return removed


def guard() -> list[Path]:
    """:func:`check` for the plants' kernels; never raises (a failure only means that
    stale caches are not cleared, as without the guard)."""
    try:
        sources = kernel_sources()
        removed = []
        for files in _by_folder(sources).values():
            modules = [p.stem for p in files]
            removed += check(sources, modules, cache_dirs(files), STAMP_NAME)
        return removed
    except Exception:  # noqa: BLE001 - importing plants must not fail because of this
        return []


def _by_folder(paths: Iterable[Path]) -> dict[Path, list[Path]]:
    out: dict[Path, list[Path]] = {}
    for p in paths:
        out.setdefault(p.parent, []).append(p)
    return out
