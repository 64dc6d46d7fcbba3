"""Running the kernels: batch partitions on threads, buffers, and thread control.

:class:`Runner` holds everything for one network description and batch shape: the
partitions of the batch, their work buffers and a small pool of activation buffers.
Partitions run concurrently on a persistent thread pool (the kernels release the GIL),
each with single-threaded BLAS (:class:`_kernel_blas_threads`); problems too small for
threads run in the calling thread and leave BLAS alone.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .curvature import backward
from .forward import forward, forward_user
from .plan import M_REC, Plan

_THREADS = [max(1, int(os.environ.get("NUMBA_NUM_THREADS") or (os.cpu_count() or 1)))]
#: Below this many multiply-adds of one forward pass per thread, a batch is not split:
#: starting a thread costs tens of microseconds.
MIN_MACS_PER_THREAD = 4_000_000
#: OpenBLAS runs a product on its own threads above 65536 * 4 multiply-adds, and a gemv above
#: 2304 * 4 elements of its matrix (its GEMM_MULTITHREAD_THRESHOLD): a pass in one partition
#: whose block products reach either switches BLAS to one thread for the call, as a
#: partitioned pass does. (rnn-small's [3200, 16] @ [16, 16] did not, and waited for a
#: second BLAS thread at every such product whenever the other core was busy.)
BLAS_THREADED_MACS = 65536 * 4
BLAS_THREADED_GEMV = 2304 * 4
#: Fewest samples in a partition.
MIN_PARTITION = 8
#: Activation buffers a Runner keeps for reuse (see Runner._buffer).
POOL_SIZE = 4
#: Elements of one layer's block of steps that a single-partition pass keeps in cache.
BLOCK_ELEMENTS = 3 << 15  # rnn-large, rnn-integrator: 3 steps a block (measured best of 1-4)

_POOL: list = []
_POOL_LOCK = threading.Lock()


def _free_refs() -> int:
    """``sys.getrefcount`` of a pooled buffer that nothing else refers to, measured with the
    same loop as :meth:`Runner._buffer` (it depends on the interpreter: CPython 3.14 no
    longer counts the loop variable, earlier versions do)."""
    pool = [np.empty(1)]
    for buf in pool:
        return sys.getrefcount(buf)
    return 0


_FREE_REFS = _free_refs()


def _run_all(calls) -> None:
    """Run zero-argument callables concurrently: the first in this thread, the others in
    a persistent pool (the kernels release the GIL). Returns only when all have finished,
    and then raises the first exception any of them raised."""
    if len(calls) == 1:
        calls[0]()
        return
    with _POOL_LOCK:
        if not _POOL or _POOL[0]._max_workers < len(calls) - 1:
            if _POOL:
                _POOL.pop().shutdown(wait=True)
            _POOL.append(ThreadPoolExecutor(max_workers=len(calls) - 1,
                                            thread_name_prefix="hfcontrol-kernel"))
        futures = [_POOL[0].submit(call) for call in calls[1:]]
    try:
        calls[0]()
    finally:
        # never return while a partition may still be writing the shared buffers
        wait(futures)
    for future in futures:
        future.result()


class LayerArrays(Sequence):
    """The activations of every layer, ``[B, T, n]``, of a batch split over threads.

    A split batch is stored partition by partition, so a layer's ``[B, T, n]`` array is
    not a view of the kernels' buffer: each is gathered on first use (the losses read
    only the layers they need, usually the output) and then kept.
    """

    def __init__(self, runner: Runner, buf: np.ndarray):
        self._runner, self._buf = runner, buf
        self._layers: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._runner.plan.sizes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        l = range(len(self))[index]  # IndexError outside, negative indices from the end
        if l not in self._layers:
            self._layers[l] = self._runner.gather(self._buf, l)
        return self._layers[l]

    def __repr__(self) -> str:
        return f"LayerArrays({len(self)} layers, batch split over {len(self._runner.parts)} threads)"


class Runner:
    """The kernels for one network description and batch shape ``(T, B)``.

    The batch is split into up to :func:`set_num_threads` partitions of consecutive
    samples when the work pays for the threads; each partition runs the whole forward
    pass, gradient or ``G v`` for its samples on its own thread (the recurrence of
    different samples is independent, so the threads never wait for each other), with
    single-threaded BLAS. The buffers hold each partition's samples together (time-major
    within the partition), so a partition is processed in blocks of steps small enough to
    stay in cache (all ``T`` steps for small problems). The gradients of the partitions are
    summed. Problems too small for threads run in the calling thread and leave BLAS's
    thread setting alone.
    """

    def __init__(self, plan: Plan, T: int, B: int, dtype):
        self.plan, self.T, self.B, self.dtype = plan, T, B, np.dtype(dtype)
        self.threads = _THREADS[0]
        sizes = np.asarray(plan.sizes, np.int64)
        macs = T * B * (sum(int(sizes[p] * sizes[q]) for p, q, *_ in plan.conns)
                        + int(np.sum(sizes[plan.meta[:, M_REC] != 0] ** 2)))
        parts = int(min(self.threads, macs // MIN_MACS_PER_THREAD, B // MIN_PARTITION))
        parts = max(1, parts)
        self.small = macs < MIN_MACS_PER_THREAD
        bounds = [B * p // parts for p in range(parts + 1)]
        self.parts = [(bounds[p], bounds[p + 1] - bounds[p]) for p in range(parts)]
        width = int(sizes.max())
        # blocks of steps: all T when a partition's layer is small, else as many steps as
        # keep a layer's block within BLOCK_ELEMENTS (one step at least)
        self.chunk = [T if T * bp * width <= 2 * BLOCK_ELEMENTS
                      else max(1, min(T, BLOCK_ELEMENTS // (bp * width)))
                      for _, bp in self.parts]
        rows = max(chunk * bp for chunk, (_, bp) in zip(self.chunk, self.parts, strict=True))
        self.blas_switch = (not self.small or rows * width * width > BLAS_THREADED_MACS
                            or rows * width > BLAS_THREADED_GEMV)
        # a block of steps of one layer, block-local buffers of every layer, per-layer
        # [Bp, n] carries (see the kernels)
        self.scratch = [np.empty(chunk * bp * (width + 5) + (chunk + 3) * bp * int(sizes.sum()),
                                 self.dtype)
                        for chunk, (_, bp) in zip(self.chunk, self.parts, strict=True)]
        self.tv = [np.empty(bp * width, self.dtype) for _, bp in self.parts]
        self.total = int(plan.offsets(T * B)[-1])
        self._pool: list[np.ndarray] = []
        self._partials: np.ndarray | None = None

    def _run(self, call) -> None:
        """``call(p, b0, bp)`` for every partition ``p`` (samples ``b0 .. b0 + bp - 1``),
        concurrently, with single-threaded BLAS (left as it is when every product is below
        OpenBLAS's own threading thresholds: the switch costs a microsecond a call)."""
        if not self.blas_switch:
            call(0, 0, self.B)
            return
        with _kernel_blas_threads(1):
            if len(self.parts) == 1:
                call(0, 0, self.B)
            else:
                _run_all([functools.partial(call, p, b0, bp)
                          for p, (b0, bp) in enumerate(self.parts)])

    def _partition_views(self, buf, l: int):
        """``(b0, bp, view [T, bp, n])`` of every partition's block of layer ``l``."""
        n = self.plan.sizes[l]
        base = int(self.plan.offsets(self.T * self.B)[l])
        for b0, bp in self.parts:
            start = base + self.T * b0 * n
            yield b0, bp, buf[start:start + self.T * bp * n].reshape(self.T, bp, n)

    def _to_kernel(self, arr, view, b0: int, bp: int) -> None:
        """Copy samples ``b0 .. b0 + bp - 1`` of a ``[B, T, n]`` (or ``[B, n]``) array into
        a partition's ``[T, bp, n]`` view."""
        part = arr[b0:b0 + bp]
        view[:] = part.transpose(1, 0, 2) if part.ndim == 3 else part[None]

    def pack(self, layers) -> tuple[np.ndarray, np.ndarray]:
        """Per-layer arrays (``None`` allowed; ``[B, T, n]`` or ``[B, n]``) into one flat
        buffer in the kernels' layout, and the mask of the layers present."""
        buf = np.zeros(self.total, self.dtype)
        present = np.zeros(len(self.plan.sizes), np.int64)
        for l, arr in enumerate(layers):
            if arr is None:
                continue
            present[l] = 1
            for b0, bp, view in self._partition_views(buf, l):
                self._to_kernel(arr, view, b0, bp)
        return buf, present

    def kernel_inputs(self, inputs) -> np.ndarray:
        """The inputs ``[B, T, n0]`` (or ``[B, n0]``) in the kernels' layout, flat."""
        if inputs.ndim == 2 and inputs.flags.c_contiguous and inputs.flags.writeable:
            return inputs.reshape(-1)  # a feedforward batch is already [B, n0]
        buf = np.empty(self.T * self.B * self.plan.sizes[0], self.dtype)
        for b0, bp in self.parts:
            n = self.plan.sizes[0]
            view = buf[self.T * b0 * n:self.T * (b0 + bp) * n].reshape(self.T, bp, n)
            self._to_kernel(inputs, view, b0, bp)
        return buf

    def unpack(self, buf, recurrent: bool):
        """Per-layer ``[B, T, n]`` (recurrent) or ``[B, n]`` activations of a flat buffer:
        views, except for a batch split over threads, whose layers are gathered from the
        partitions on first use (:class:`LayerArrays`)."""
        if len(self.parts) > 1 and self.T > 1:
            return LayerArrays(self, buf)
        offs = self.plan.offsets(self.T * self.B)
        out = []
        for l, n in enumerate(self.plan.sizes):
            view = buf[offs[l]:offs[l + 1]].reshape(self.T, self.B, n)
            out.append(view.transpose(1, 0, 2) if recurrent else view[0])
        return out

    def gather(self, buf, l: int) -> np.ndarray:
        """Layer ``l`` of a flat buffer as a ``[B, T, n]`` array (a copy)."""
        out = np.empty((self.B, self.T, self.plan.sizes[l]), self.dtype)
        for b0, bp, view in self._partition_views(buf, l):
            out[b0:b0 + bp] = view.transpose(1, 0, 2)
        return out

    def _buffer(self) -> np.ndarray:
        """A flat buffer for activations or derivatives, reused when nothing refers to it
        any more (not a cached minibatch, nor an array returned to the caller, nor a view
        of one). Fresh memory is slow here: its first touch page-faults, at 6 ms per 40 MB,
        and several times slower still when the partitions' threads fault concurrently."""
        for buf in self._pool:
            if sys.getrefcount(buf) <= _FREE_REFS:
                return buf
        buf = np.empty(self.total, self.dtype)
        if len(self._pool) < POOL_SIZE:
            self._pool.append(buf)
        return buf

    def forward(self, W, inputs, init_act, init_state, deriv: bool = True):
        """Compiled forward pass of ``inputs`` (``[B, T, n0]`` or ``[B, n0]``); returns flat
        ``(acts, ds)`` buffers (``ds`` is None unless ``deriv``); ``init_act``/``init_state``
        come from :func:`init_block`."""
        plan, T, B = self.plan, self.T, self.B
        acts = self._buffer()
        ds = self._buffer() if deriv else acts
        inputs_k = self.kernel_inputs(inputs)
        user = plan.user

        def part(p, b0, bp):
            if user is None:
                forward(W, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p],
                        inputs_k, acts, ds, deriv, init_act, init_state, self.scratch[p], None,
                        None)
            else:
                forward_user(W, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p],
                             inputs_k, acts, ds, deriv, init_act, init_state, self.scratch[p],
                             *user)

        self._run(part)
        return acts, (ds if deriv else None)

    def backward(self, W, WT, V, acts, ds, c, lscale, scale, gv: bool, present, init_act,
                 windows, ra) -> np.ndarray:
        """The gradient (``gv`` false) or ``G V`` (see :func:`~.curvature.backward`), summed
        over the partitions; always a fresh array."""
        plan, T, B = self.plan, self.T, self.B
        if len(self.parts) == 1:
            # one partition in this thread: no closure, no thread pool
            out = np.empty(W.size, W.dtype)
            args = (W, WT, V, plan.meta, plan.prm, plan.conns, T, B, 0, B, self.chunk[0], acts,
                    ds, c, lscale, scale, gv, present, init_act, windows, out, ra,
                    self.scratch[0], self.tv[0])
            if self.blas_switch:
                with _kernel_blas_threads(1):
                    backward(*args)
            else:
                backward(*args)
            return out
        # the partitions' sums, never returned: kept (fresh memory page-faults)
        if self._partials is None or self._partials.shape[1] != W.size:
            self._partials = np.empty((len(self.parts), W.size), W.dtype)
        outs = self._partials

        def part(p, b0, bp):
            backward(W, WT, V, plan.meta, plan.prm, plan.conns, T, B, b0, bp, self.chunk[p],
                     acts, ds, c, lscale, scale, gv, present, init_act, windows, outs[p], ra,
                     self.scratch[p], self.tv[p])

        self._run(part)
        return outs.sum(axis=0)


_KERNEL_BLAS = []


def _kernel_blas_lib():
    """``(get, set)`` thread functions of the BLAS that np.dot inside @njit calls (scipy's
    OpenBLAS), or None."""
    if not _KERNEL_BLAS:
        funcs = None
        try:
            import ctypes
            import glob
            import os

            import scipy

            root = os.path.dirname(os.path.dirname(scipy.__file__))
            for path in glob.glob(os.path.join(root, "scipy.libs", "*openblas*.so*")):
                lib = ctypes.CDLL(path)
                for prefix in ("scipy_openblas_", "openblas_", "scipy_openblas64_"):
                    get = getattr(lib, prefix + "get_num_threads", None)
                    put = getattr(lib, prefix + "set_num_threads", None)
                    if get is not None and put is not None:
                        funcs = (get, put)
                        break
                if funcs:
                    break
        except Exception:  # noqa: BLE001 - thread control is an optimisation only
            funcs = None
        _KERNEL_BLAS.append(funcs)
    return _KERNEL_BLAS[0]


class _kernel_blas_threads:
    """Context manager: run the kernels' BLAS on ``n`` threads (None: leave as is)."""

    def __init__(self, n):
        self.n = n
        self.old = None

    def __enter__(self):
        lib = _kernel_blas_lib() if self.n is not None else None
        if lib is not None:
            self.old = lib[0]()
            if self.old != self.n:
                lib[1](int(self.n))
            else:
                self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            _kernel_blas_lib()[1](int(self.old))
        return False


def set_num_threads(n: int) -> dict[str, int]:
    """Set the threads of the compiled kernels and, where it can be controlled, of BLAS.

    The kernels run up to ``n`` partitions of a batch concurrently (:class:`Runner`), each
    with single-threaded BLAS. BLAS's own threads (NumPy's, used by the reference path, and
    the library the kernels call, outside the kernels) are set through ``threadpoolctl`` when
    it is installed, otherwise through OpenBLAS's ``set_num_threads``.

    Returns the settings in effect: ``kernels`` and ``blas`` (-1 when BLAS cannot be
    controlled from here -- set ``OPENBLAS_NUM_THREADS`` before starting Python).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive integer number of threads, got {n!r}")
    _THREADS[0] = int(n)
    blas = -1
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(n), user_api="blas")
        blas = int(n)
    except ImportError:
        lib = _kernel_blas_lib()
        if lib is not None:
            lib[1](int(n))
            blas = int(n)
    return {"kernels": _THREADS[0], "blas": blas}


def get_num_threads() -> int:
    """Threads of the compiled kernels (see :func:`set_num_threads`)."""
    return _THREADS[0]


def thread_info() -> dict[str, int]:
    """Threads of the compiled kernels and of BLAS (-1 if unknown)."""
    blas = -1
    try:
        from threadpoolctl import threadpool_info

        blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                   default=-1)
    except ImportError:
        lib = _kernel_blas_lib()
        if lib is not None:
            blas = int(lib[0]())
        else:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                if os.environ.get(var):
                    blas = int(os.environ[var])
                    break
    return {"kernels": _THREADS[0], "blas": blas}
