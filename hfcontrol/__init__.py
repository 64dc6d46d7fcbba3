"""hfcontrol: neural controllers for simulated plants, trained by Hessian-free optimisation.

The public names follow the ``hessianfree`` reference API: :class:`FFNet`,
:class:`RNNet`, :mod:`hfcontrol.nonlinearities` (alias ``hfcontrol.nl``),
:mod:`hfcontrol.loss_funcs` and :mod:`hfcontrol.optimizers` (alias ``hfcontrol.opt``).
The aliases are the same module objects, importable both ways:
``from hfcontrol.nl import Tanh`` and ``import hfcontrol.opt`` work.
:func:`set_num_threads`/:func:`get_num_threads` control the threads of the compiled
kernels (and BLAS's, where it can be controlled).
"""

import sys as _sys

from . import loss_funcs, nonlinearities, optimizers
from . import nonlinearities as nl
from . import optimizers as opt
from .closed_loop import ClosedLoop
from .controller import Controller
from .ffnet import FFNet
from .kernels import get_num_threads, set_num_threads
from .rnnet import RNNet

# register the aliases as submodules, so that the import system finds them by name
_sys.modules.setdefault(__name__ + ".nl", nonlinearities)
_sys.modules.setdefault(__name__ + ".opt", optimizers)

__all__ = ["ClosedLoop", "Controller", "FFNet", "RNNet", "loss_funcs", "nonlinearities", "nl",
           "optimizers", "opt", "set_num_threads", "get_num_threads"]
__version__ = "0.1.0"
