"""A user's own plant, written as a ``hessianfree`` user writes one: an ``nl.Plant`` subclass that
is both the network's input source and its output layer (the reference API's plant demo).
"""

import numpy as np

from hfcontrol import nonlinearities as nl


@nl.register
class RowFormPlant(nl.Plant):
    r"""The demo plant: position and velocity with a state-dependent input gain.

    With state :math:`s = (p, v)` and control :math:`u = (u_0, u_1)`, in the
    row-vector form :math:`s' = s A + u B(s)` with :math:`A = [[1, 0], [0.2, 1]]`
    and :math:`B(s) = [[0, 0], [0, \tanh(p)]]`:

    .. math:: p' = p + 0.2 v, \qquad v' = v + \tanh(p)\, u_1

    The target is position 1 and velocity 0 at the last step only (NaN elsewhere).
    The plant is both the network's input (the current state) and its output
    nonlinearity (the control steps the plant; the output is the new state).
    Derivatives follow the plant's state from step to step; the state fed back
    to the network's input is treated as data.

    Parameters
    ----------
    batch : int
        Number of initial states, drawn from U(-0.5, 0.5) for each variable.
    steps : int
        Number of control steps.
    rng : numpy.random.Generator or int, optional
        Source of the initial states.
    init_states : array_like ``[batch, 2]``, optional
        The initial states themselves (then ``rng`` is not used); this is how a saved
        network restores its plant.
    """

    A = np.array([[1.0, 0.0], [0.2, 1.0]])

    def __init__(self, batch: int = 32, steps: int = 15, rng=None, init_states=None):
        super().__init__(stateful=True)
        self.shape = (int(batch), int(steps), 2)
        if init_states is None:
            self.init_states = np.random.default_rng(rng).uniform(-0.5, 0.5, (batch, 2))
        else:
            self.init_states = np.array(init_states, dtype=np.float64)
            if self.init_states.shape != (self.shape[0], 2):
                raise ValueError(f"init_states must have shape (batch, 2) = ({self.shape[0]}, 2), "
                                 f"got {self.init_states.shape}")
        self.target = np.array([1.0, 0.0])
        self.reset()

    def get_config(self) -> dict:
        return {"batch": self.shape[0], "steps": self.shape[1],
                "init_states": self.init_states.tolist()}

    def __repr__(self) -> str:
        return f"RowFormPlant(batch={self.shape[0]}, steps={self.shape[1]})"

    def reset(self, init=None):
        self.state = np.array(self.init_states if init is None else init, dtype=np.float64)
        self._inputs: list[np.ndarray] = []
        self._prev_state = self.state

    def gain(self, state: np.ndarray) -> np.ndarray:
        """``B(s)`` for a batch of states, ``[batch, 2, 2]``."""
        B = np.zeros(state.shape[:-1] + (2, 2))
        B[..., 1, 1] = np.tanh(state[..., 0])
        return B

    def __call__(self, x):
        self._inputs.append(self.state.copy())
        return self.state

    def activation(self, x):
        self._prev_state = self.state
        u = np.asarray(x, dtype=np.float64)
        self.state = self.state @ self.A + np.einsum("bi,bij->bj", u, self.gain(self.state))
        return self.state.astype(x.dtype)

    def d_activation(self, x, a):
        prev = self._prev_state
        d = np.zeros(prev.shape + (2, 3))
        d[..., 0] = np.swapaxes(self.gain(prev), -1, -2)  # ds'_i/du_j = B(s)[j, i]
        d[..., 1] = self.A.T  # ds'_i/ds_j = A[j, i] + d(u B(s))_i / ds_j
        d[:, 1, 0, 1] += x[:, 1] / np.cosh(prev[:, 0]) ** 2
        d[..., 2] = np.eye(2)
        return d.astype(a.dtype)

    def get_vecs(self):
        inputs = np.stack(self._inputs, axis=1)
        targets = np.full(inputs.shape, np.nan)
        targets[:, -1] = self.target
        return inputs, targets


