"""hfcontrol: neural controllers for simulated plants, trained by Hessian-free optimisation.

The public names follow the ``hessianfree`` reference API: :class:`FFNet`,
:class:`RNNet`, :mod:`hfcontrol.nonlinearities` (alias ``nl``),
:mod:`hfcontrol.loss_funcs` and :mod:`hfcontrol.optimizers` (alias ``opt``).
"""

from . import loss_funcs, nonlinearities, optimizers
from . import nonlinearities as nl
from . import optimizers as opt
from .ffnet import FFNet
from .rnnet import RNNet

__all__ = ["FFNet", "RNNet", "loss_funcs", "nonlinearities", "nl", "optimizers", "opt"]
__version__ = "0.1.0"
