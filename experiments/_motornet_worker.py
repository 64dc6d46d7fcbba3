"""Run MotorNet's ``RigidTendonArm26`` on given initial states and excitations (a worker of
``experiments/motornet_compare.py``, run by the Python of the venv that has ``motornet``;
it imports neither ``plants`` nor ``hfcontrol``).

Usage: ``python _motornet_worker.py IN.npz OUT.npz``. ``IN.npz`` holds ``joint0[B, 4]``
(shoulder, elbow angles in rad, their velocities in rad/s), ``excitation[B, T, 6]``,
``dtype`` ("float32" or "float64") and ``timestep`` (s). ``OUT.npz`` receives ``joint[B, T + 1, 4]``,
``hand[B, T + 1, 2]``, ``activation[B, T + 1, 6]``, ``force[B, T + 1, 6]`` (N),
``musculotendon_length[B, T + 1, 6]`` (m), and ``version`` (MotorNet's and torch's).
"""

from __future__ import annotations

import sys

import motornet as mn
import numpy as np
import torch


def run(joint0: np.ndarray, excitation: np.ndarray, dtype: str, timestep: float) -> dict:
    """Reset the effector (MotorNet's defaults but ``timestep``) at ``joint0`` and step it
    through ``excitation``."""
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    effector = mn.effector.RigidTendonArm26(muscle=mn.muscle.RigidTendonHillMuscle(),
                                            timestep=timestep)
    effector = effector.to(tdt)
    B, T, _ = excitation.shape
    effector.reset(options={"joint_state": torch.tensor(joint0, dtype=tdt),
                            "batch_size": B})
    out = {k: [] for k in ("joint", "hand", "activation", "force", "musculotendon_length")}

    def record() -> None:
        s = effector.states
        out["joint"].append(s["joint"].detach().numpy().astype(np.float64))
        out["hand"].append(s["fingertip"].detach().numpy().astype(np.float64))
        m = s["muscle"].detach().numpy().astype(np.float64)
        out["activation"].append(m[:, 0, :])
        out["force"].append(m[:, effector.muscle.state_name.index("force"), :])
        out["musculotendon_length"].append(s["geometry"][:, 0, :].detach().numpy()
                                           .astype(np.float64))

    record()
    with torch.no_grad():
        for t in range(T):
            effector.step(torch.tensor(excitation[:, t], dtype=tdt))
            record()
    res = {k: np.stack(v, axis=1) for k, v in out.items()}
    res["version"] = np.array(f"motornet {mn.__version__}, torch {torch.__version__}")
    res["dt"] = np.array(effector.dt)
    return res


def main(argv: list[str]) -> None:
    src, dst = argv
    data = np.load(src)
    res = run(data["joint0"], data["excitation"], str(data["dtype"]), float(data["timestep"]))
    np.savez(dst, **res)


if __name__ == "__main__":
    main(sys.argv[1:])
