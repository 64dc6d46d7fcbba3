"""The stale-cache guard of the compiled kernels clears the on-disk caches of the kernel
modules when a source they depend on changes, and only then."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hfcontrol.kernels import _cache_guard as cg

KERNEL = """\
from numba import njit

from dep import VALUE


@njit(cache=True)
def kernel():
    return VALUE
"""


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def package(tmp_path, monkeypatch):
    """A module with a cached kernel that inlines a constant from another file."""
    (tmp_path / "dep.py").write_text("VALUE = 1\n")
    (tmp_path / "kern.py").write_text(KERNEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "dep", raising=False)
    return tmp_path


def _caches(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("kern.*.nb?"))


def test_numba_writes_its_cache_where_the_guard_looks(package):
    (cache_dir,) = cg.cache_dirs([package / "kern.py"])
    assert _caches(cache_dir) == []
    assert _load(package / "kern.py").kernel() == 1
    assert _caches(cache_dir)  # numba's own cache files, found by the guard's locator


def test_stale_caches_removed_and_stamped(package):
    sources = [package / "kern.py", package / "dep.py"]
    (cache_dir,) = cg.cache_dirs([package / "kern.py"])
    assert _load(package / "kern.py").kernel() == 1
    cached = _caches(cache_dir)
    other = cache_dir / "unrelated.f-1.py311.nbi"
    other.write_text("")
    # no stamp yet: caches of unknown origin are cleared, the stamp written
    removed = cg.check(sources, ["kern"], [cache_dir], cg.STAMP_NAME)
    assert sorted(p.name for p in removed) == cached and _caches(cache_dir) == []
    stamp = (cache_dir / cg.STAMP_NAME).read_text()
    assert stamp == cg.source_digest(sources)
    # nothing changed: the caches are kept
    assert _load(package / "kern.py").kernel() == 1
    assert cg.check(sources, ["kern"], [cache_dir], cg.STAMP_NAME) == [] and _caches(cache_dir) == cached
    # numba alone would load the stale kernel after an edit of its dependency
    (package / "dep.py").write_text("VALUE = 2\n")
    sys.modules.pop("dep")
    assert _load(package / "kern.py").kernel() == 1
    # the guard clears it, and writes a fresh stamp
    assert sorted(p.name for p in cg.check(sources, ["kern"], [cache_dir], cg.STAMP_NAME)) == cached
    assert (cache_dir / cg.STAMP_NAME).read_text() == cg.source_digest(sources) != stamp
    sys.modules.pop("dep")
    assert _load(package / "kern.py").kernel() == 2
    assert other.exists()
    assert not list(cache_dir.glob("*.tmp"))


def test_undeletable_caches_leave_the_stamp_unwritten(package, monkeypatch):
    """A read-only cache directory (or another process holding it): nothing raises, and
    without a stamp the next import tries again."""
    cache_dir = package / "ro"
    cache_dir.mkdir()
    (cache_dir / "kern.f-1.py311.nbi").write_text("")

    def refuse(self, missing_ok=False):
        raise PermissionError(f"read-only: {self}")

    monkeypatch.setattr(Path, "unlink", refuse)
    assert cg.check([package / "dep.py"], ["kern"], [cache_dir], cg.STAMP_NAME) == []
    assert not (cache_dir / cg.STAMP_NAME).exists()
    assert (cache_dir / "kern.f-1.py311.nbi").exists()


def test_guard_of_the_installed_kernels_never_raises(monkeypatch):
    assert isinstance(cg.guard(), list)
    monkeypatch.setattr(cg, "cache_dirs", lambda files: 1 / 0)
    assert cg.guard() == []
    deps = cg.dependencies()
    assert all(p.exists() for p in deps)
    assert {p.name for p in deps} >= {"forward.py", "curvature.py", "_blas.py",
                                      "activations.py", "plan.py", "nonlinearities.py"}


def test_the_plants_guard_watches_every_compiled_source_of_plants():
    from plants import _cache_guard as plants_guard

    names = {p.name for p in plants_guard.kernel_sources()}
    # the kernels, what they inline, and the environments' step kernels; not pure Python
    assert {"_kernels.py", "_integrate.py", "_dyn_muscle.py", "_dyn_two_link.py",
            "_step.py"} <= names
    assert not names & {"_spec.py", "_validation.py", "__init__.py"}
    # hfcontrol's guard shares the machinery (one implementation)
    assert cg.check is plants_guard.check
