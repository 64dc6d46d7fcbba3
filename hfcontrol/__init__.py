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
import time as _time

#: when the package began to load (``hfcontrol train`` counts loading the kernels)
IMPORT_STARTED = _time.perf_counter()

from . import loss_funcs, nonlinearities, optimizers  # noqa: E402
from . import nonlinearities as nl  # noqa: E402
from . import optimizers as opt  # noqa: E402
from .closed_loop import ClosedLoop  # noqa: E402
from .controller import Controller  # noqa: E402
from .ffnet import FFNet  # noqa: E402
from .kernels import get_num_threads, set_num_threads  # noqa: E402
from .rnnet import RNNet  # noqa: E402

# register the aliases as submodules, so that the import system finds them by name
_sys.modules.setdefault(__name__ + ".nl", nonlinearities)
_sys.modules.setdefault(__name__ + ".opt", optimizers)

__all__ = ["ClosedLoop", "Controller", "FFNet", "RNNet", "loss_funcs", "nonlinearities", "nl",
           "optimizers", "opt", "set_num_threads", "get_num_threads"]
__version__ = "0.1.0"
