"""Module aliases and side effects of importing hfcontrol, checked in fresh interpreters."""

import subprocess
import sys

import hfcontrol as hf


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_nl_and_opt_are_importable_module_aliases():
    _run("from hfcontrol.nl import Tanh\n"
         "import hfcontrol.opt\n"
         "import importlib\n"
         "import hfcontrol, hfcontrol.nonlinearities, hfcontrol.optimizers\n"
         "assert hfcontrol.nl is hfcontrol.nonlinearities\n"
         "assert hfcontrol.opt is hfcontrol.optimizers\n"
         "assert Tanh is hfcontrol.nonlinearities.Tanh\n"
         "assert importlib.import_module('hfcontrol.opt').HessianFree is "
         "hfcontrol.optimizers.HessianFree\n")
    # and in this process, where hfcontrol is already imported
    import hfcontrol.nl
    import hfcontrol.opt
    from hfcontrol.opt import SGD

    assert hfcontrol.nl is hf.nonlinearities and hfcontrol.opt is hf.optimizers
    assert SGD is hf.optimizers.SGD


def test_plotting_leaves_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    png = tmp_path / "h.png"
    _run("import sys, matplotlib\n"
         "matplotlib.use('svg')\n"
         "from hfcontrol.plotting import plot_history\n"
         "plot_history({'train_err': [1.0, 0.5], 'test_err': [1.0, 0.4]}, sys.argv[1])\n"
         "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
         "assert 'matplotlib.pyplot' not in sys.modules\n".replace("sys.argv[1]", repr(str(png))))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
