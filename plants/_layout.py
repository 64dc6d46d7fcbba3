"""Layout of the flat float64 parameter array that describes a plant to the kernels.

Every built-in plant packs itself into one 1-D float64 array ``params``::

    params[0]   plant code              (LINEAR, PENDULUM, CARTPOLE, CHAIN, TWO_LINK, THREE_LINK,
                                         MUSCLE_ARM, POINT_MASS)
    params[1]   integrator code         (EULER, SEMI_IMPLICIT, RK4, DISCRETE)
    params[2]   substeps                (int >= 1, stored as float)
    params[3]   dt                      (one full step; each substep is dt / substeps)
    params[4]   n   state dimension
    params[5]   m   control dimension
    params[6]   nq  number of position coordinates (0 for LinearPlant)
    params[7]   offset of the plant-specific section
    params[8]   offset of u_low[m]
    params[9]   offset of u_high[m]
    params[10]  offset of v_max[nq]   velocity clip magnitude (inf = none)
    params[11]  offset of q_low[nq]   joint lower limits (-inf = none)
    params[12]  offset of q_high[nq]  joint upper limits (inf = none)
    params[13]  offset of pos_index[nq]  state index of each position coordinate
    params[14]  offset of vel_index[nq]  state index of the matching velocity
    params[15]  workspace size (float64 elements) needed by the kernels
    params[16:] the blocks above, then the plant section.

Mechanical plant sections start with the force-field block (``FIELD_LEN`` numbers)::

    [on, F0x, F0y, K00, K01, K10, K11]

an end-point force ``F = F0 + K p_dot`` (N) applied as generalised force ``J(q)^T F``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: ``@njit`` options of the non-allocating hot-path kernels. ``_nrt=False`` (a Numba option,
#: present through numba 0.68) compiles them without reference counting, which removes
#: atomic incref/decref calls around every array use and view (15-30 % faster steps here).
#: The kernels never allocate, so they do not need the runtime. Drop the key to go back.
HOT = {"cache": True, "_nrt": False}
#: The same for kernels that only compiled code calls: no Python wrapper is generated for
#: them (a wrapper unboxes every argument; building it costs compile time for nothing).
HOT_INTERNAL = {**HOT, "no_cpython_wrapper": True, "no_cfunc_wrapper": True}
#: The same for the integrators' small per-step helpers, inlined at the Numba IR level into
#: the loops that call them (LLVM does not inline them: their array arguments make a call
#: look expensive, and a call per step costs more than the step of a cheap plant).
HOT_INLINE = {"cache": True, "_nrt": False, "inline": "always"}

#: Plant codes (they select the compiled kernels). CHAIN is a planar chain of any length,
#: THREE_LINK the same code compiled for three links, TWO_LINK the two-link closed form;
#: MUSCLE_ARM the two-link arm driven by six Hill muscles, POINT_MASS the planar point mass.
LINEAR, PENDULUM, CARTPOLE, CHAIN, TWO_LINK, THREE_LINK = 0, 1, 2, 3, 4, 5
MUSCLE_ARM, POINT_MASS = 6, 7
EULER, SEMI_IMPLICIT, RK4, DISCRETE = 0, 1, 2, 3

H_CODE, H_INTEG, H_SUB, H_DT, H_N, H_M, H_NQ = 0, 1, 2, 3, 4, 5, 6
H_PLANT, H_ULO, H_UHI, H_VMAX, H_QLO, H_QHI, H_POS, H_VEL, H_WS = 7, 8, 9, 10, 11, 12, 13, 14, 15
HEADER = 16
FIELD_LEN = 7


@njit(**HOT)
def integrator_workspace(n: int, m: int) -> int:
    """Scratch (float64 elements) the integrators need for state size n, control size m.

    Five vectors of ``n``, two of ``m``, ``F`` (n x n), ``G`` (n x m) and six ``n x (n + m)``
    matrices (:func:`plants._integrate.views`); the plant's own scratch follows.
    """
    return 5 * n + 2 * m + 7 * n * (n + m)


def pack(code: int, integ: int, substeps: int, dt: float, n: int, m: int,
         pos_index, vel_index, u_low, u_high, v_max, q_low, q_high,
         plant_section, plant_workspace: int) -> np.ndarray:
    """Assemble the flat parameter array described in the module docstring."""
    nq = len(pos_index)
    blocks = [u_low, u_high, v_max, q_low, q_high, pos_index, vel_index]
    sizes = [m, m, nq, nq, nq, nq, nq]
    offsets = []
    off = HEADER
    for b, s in zip(blocks, sizes, strict=True):
        if len(b) != s:
            raise AssertionError("internal layout error")
        offsets.append(off)
        off += s
    head = np.zeros(HEADER)
    head[:HEADER] = [code, integ, substeps, dt, n, m, nq, off, *offsets,
                     integrator_workspace(n, m) + plant_workspace]
    parts = [head] + [np.asarray(b, dtype=float).ravel() for b in blocks]
    parts.append(np.asarray(plant_section, dtype=float).ravel())
    return np.ascontiguousarray(np.concatenate(parts))


def field_block(constant_force, field_matrix) -> np.ndarray:
    """The ``FIELD_LEN`` block for an end-point force ``F = F0 + K p_dot``."""
    f0 = np.asarray(constant_force, dtype=float)
    k = np.asarray(field_matrix, dtype=float)
    on = float(np.any(f0 != 0) or np.any(k != 0))
    return np.concatenate([[on], f0, k.ravel()])
