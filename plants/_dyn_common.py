"""Compiled helpers shared by the plant models: small dense solves and end-point force fields.

Hot-path kernels address one flat scratch array ``w`` by offsets instead of creating array
views (a view costs a reference-count round trip, which dominates at these sizes). A
matrix ``X`` with ``ncol`` columns stored at offset ``o`` has entry
``X[i, j] = w[o + i * ncol + j]``.
"""

from __future__ import annotations

from numba import njit

from ._layout import HOT_INLINE


@njit(**HOT_INLINE)
def ldl_inplace(w, o, n):
    """Factor the SPD ``n x n`` matrix at ``w[o:]`` as ``L D L^T`` in place.

    The strict lower triangle receives the unit-lower ``L``, the diagonal ``1 / D`` (so the
    solves below need no division or square root).
    """
    for j in range(n):
        d = w[o + j * n + j]
        for k in range(j):
            ljk = w[o + j * n + k]
            d -= ljk * ljk / w[o + k * n + k]
        inv = 1.0 / d
        w[o + j * n + j] = inv
        for i in range(j + 1, n):
            t = w[o + i * n + j]
            for k in range(j):
                t -= w[o + i * n + k] * w[o + j * n + k] / w[o + k * n + k]
            w[o + i * n + j] = t * inv


@njit(**HOT_INLINE)
def ldl_solve(w, oL, n, oX, ncol):
    """Solve ``L D L^T Y = X`` in place for the ``n x ncol`` matrix ``X`` at ``w[oX:]``."""
    for c in range(ncol):
        for i in range(n):
            t = w[oX + i * ncol + c]
            for k in range(i):
                t -= w[oL + i * n + k] * w[oX + k * ncol + c]
            w[oX + i * ncol + c] = t
        for i in range(n - 1, -1, -1):
            t = w[oX + i * ncol + c] * w[oL + i * n + i]
            for k in range(i + 1, n):
                t -= w[oL + k * n + i] * w[oX + k * ncol + c]
            w[oX + i * ncol + c] = t


@njit(**HOT_INLINE)
def field_torque(p, off, w, oJ, nq, v, ov, otau, oF):
    """Add the generalised force ``J^T F`` of the end-point field to ``w[otau:otau+nq]``.

    ``F = F0 + K J v`` with the field block at ``p[off:]``, ``J`` (2 x nq) at ``w[oJ:]`` and
    velocities ``v[ov:ov+nq]``; ``F`` is left in ``w[oF:oF+2]``.
    """
    pdx = 0.0
    pdy = 0.0
    for i in range(nq):
        pdx += w[oJ + i] * v[ov + i]
        pdy += w[oJ + nq + i] * v[ov + i]
    fx = p[off + 1] + p[off + 3] * pdx + p[off + 4] * pdy
    fy = p[off + 2] + p[off + 5] * pdx + p[off + 6] * pdy
    w[oF] = fx
    w[oF + 1] = fy
    for i in range(nq):
        w[otau + i] += w[oJ + i] * fx + w[oJ + nq + i] * fy


@njit(**HOT_INLINE)
def field_torque_jac(p, off, w, oJ, odJ, nq, v, ov, oF, odtq, odtv):
    """Add d(J^T F)/dq to the nq x nq matrix at ``w[odtq:]`` and d(J^T F)/dv at ``w[odtv:]``.

    ``dJ/dq_k`` (2 x nq) is at ``w[odJ + 2 nq k:]``; ``F`` at ``w[oF:]`` (from
    :func:`field_torque`). With ``F = F0 + K J v``::

        d(J^T F)/dq_k = dJ_k^T F + J^T K dJ_k v,      d(J^T F)/dv = J^T K J.
    """
    k00 = p[off + 3]
    k01 = p[off + 4]
    k10 = p[off + 5]
    k11 = p[off + 6]
    F0 = w[oF]
    F1 = w[oF + 1]
    for k in range(nq):
        ok = odJ + 2 * nq * k
        gx = 0.0
        gy = 0.0
        for i in range(nq):
            gx += w[ok + i] * v[ov + i]
            gy += w[ok + nq + i] * v[ov + i]
        fx = k00 * gx + k01 * gy
        fy = k10 * gx + k11 * gy
        for i in range(nq):
            w[odtq + i * nq + k] += (w[ok + i] * F0 + w[ok + nq + i] * F1
                                     + w[oJ + i] * fx + w[oJ + nq + i] * fy)
    for j in range(nq):
        kx = k00 * w[oJ + j] + k01 * w[oJ + nq + j]
        ky = k10 * w[oJ + j] + k11 * w[oJ + nq + j]
        for i in range(nq):
            w[odtv + i * nq + j] += w[oJ + i] * kx + w[oJ + nq + i] * ky
