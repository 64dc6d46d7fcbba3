"""Time forward, gradient and G v on the compiled (numba) path, the NumPy path and JAX.

Usage::

    python experiments/benchmark.py [--quick] [--repeats 7] [--threads N] [--json out.json]

Every figure is the median of ``--repeats`` timed samples after one warm-up call, all in
one run; a sample averages enough consecutive calls to last 10 ms (a single call for the
large problems). JAX (``jax.jit`` of ``jvp`` then ``vjp``) is timed only when it is installed.
Beside the G v times the script prints the achieved GFLOP/s (from the multiply-adds
of the products G v performs) and the machine's measured float32 sgemm rate
(2048 x 2048). Benchmarks print ratios measured in one run; they are not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


def _early_threads(argv) -> None:
    """Apply ``--threads N`` to every BLAS before numpy is imported (both the BLAS NumPy
    calls and the one the compiled kernels call read these variables at load time)."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else (
            argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None)
        if value is not None:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                        "NUMBA_NUM_THREADS"):
                os.environ[var] = value


if __name__ == "__main__":
    _early_threads(sys.argv[1:])

import numpy as np  # noqa: E402

import hfcontrol as hf  # noqa: E402
from hfcontrol import loss_funcs as lf  # noqa: E402
from hfcontrol import nl  # noqa: E402
from hfcontrol.bench import median_time  # noqa: E402

PROBLEMS = {
    # name: (class, shape, layers, loss, batch, steps)
    "rnn-plant": ("rnn", [2, 16, 2], ["Linear", "Tanh", "Linear"], "SquaredError", 32, 15),
    "rnn-small": ("rnn", [2, 16, 2], ["Linear", "Tanh", "Linear"], "SquaredError", 32, 100),
    "rnn-integrator": ("rnn", [1, 100, 1], ["Linear", "Logistic", "Logistic"], "SquaredError",
                       500, 200),
    "rnn-large": ("rnn", [10, 256, 10], ["Linear", "Tanh", "Tanh"], "SquaredError", 256, 100),
    "ff-mnist": ("ff", [784, 1024, 512, 256, 32, 10],
                 ["Linear", "ReLU", "ReLU", "ReLU", "ReLU", "Softmax"], "CrossEntropy", 7500,
                 None),
}
QUICK = ["rnn-plant", "rnn-small", "rnn-large"]
TARGETS_MS = {"rnn-plant": 0.05, "rnn-small": 0.25, "rnn-integrator": 80, "rnn-large": 110,
              "ff-mnist": 500}


def sgemm_gflops(repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048)).astype(np.float32)
    b = rng.standard_normal((2048, 2048)).astype(np.float32)
    t = median_time(lambda: a @ b, repeats)
    return 2 * 2048 ** 3 / t / 1e9


def build(name: str, dtype=np.float32):
    kind, shape, layers, loss, batch, steps = PROBLEMS[name]
    rng = np.random.default_rng(1)
    layers = [nl.from_spec(spec) for spec in layers]
    if kind == "rnn":
        net = hf.RNNet(shape, layers=layers, loss_type=lf.from_spec(loss), rng=2, dtype=dtype,
                       W_init_params={"init_type": "gaussian"},
                       W_rec_params={"init_type": "gaussian", "coeff": 0.9})
        x = rng.standard_normal((batch, steps, shape[0])).astype(dtype)
        y = rng.standard_normal((batch, steps, shape[-1])).astype(dtype)
    else:
        net = hf.FFNet(shape, layers=layers, loss_type=lf.from_spec(loss), rng=2, dtype=dtype,
                       W_init_params={"init_type": "gaussian"})
        x = rng.random((batch, shape[0])).astype(dtype)
        y = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], batch)]
    v = rng.standard_normal(net.n_params).astype(dtype) * dtype(0.01)
    return net, x, y, v


def gv_flops(net, batch: int, steps: int | None) -> float:
    """Floating-point operations of one G v (2 per multiply-add of its matrix products).

    R-forward: ``a @ V`` for every connection and ``R{a} @ W`` for every connection
    from a hidden layer (and the recurrent ones); backward: ``delta @ W.T`` into every
    hidden layer and ``a.T @ delta`` for every weight gradient.
    """
    rows = batch * (steps or 1)
    macs = 0
    conns = [(pre, post) for pre, posts in net.conns.items() for post in posts]
    conns += [(layer, layer) for layer in getattr(net, "rec_layers", [])]
    for pre, post in conns:
        size = net.shape[pre] * net.shape[post]
        macs += 2 * size * rows  # a @ V and a.T @ delta
        if pre > 0:
            macs += 2 * size * rows  # R{a} @ W and delta @ W.T
    return 2.0 * macs


def time_backend(net, x, y, v, backend: str, repeats: int) -> dict[str, float]:
    net.backend = backend
    if net.backend != backend:
        raise RuntimeError(f"{backend} path not available for this net")
    out = {"forward": median_time(lambda: net.forward(x), repeats)}
    net.cache_minibatch(x, y)
    out["cache"] = median_time(lambda: net.cache_minibatch(x, y), max(3, repeats // 2))
    out["grad"] = median_time(net.calc_grad, repeats)
    out["Gv"] = median_time(lambda: net.calc_G(v), repeats)
    return out


def time_jax(net, x, y, v, repeats: int) -> dict[str, float] | None:
    """G v with JAX: jit of (jvp of the outputs, then vjp), on the same net (tanh RNN / MLP)."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    return _jax_times(jax, jnp, net, x, y, v, repeats)


def _jax_times(jax, jnp, net, x, y, v, repeats):  # pragma: no cover - jax not installed here
    acts = {"Linear": lambda z: z, "Tanh": jnp.tanh, "Logistic": jax.nn.sigmoid,
            "ReLU": jax.nn.relu, "Softmax": jax.nn.softmax}
    fns = [acts[type(layer).__name__] for layer in net.layers]
    recurrent = isinstance(net, hf.RNNet)
    offsets = dict(net.offsets)

    def unpack(W, conn):
        s, m, e = offsets[conn]
        return W[s:m].reshape(net.shape[conn[0]], net.shape[conn[1]]), W[m:e]

    def outputs(W, xs):
        if not recurrent:
            a = [fns[0](xs)]
            for layer in range(1, net.n_layers):
                z = sum(a[pre] @ unpack(W, (pre, layer))[0] + unpack(W, (pre, layer))[1]
                        for pre in net.back_conns[layer])
                a.append(fns[layer](z))
            return a[-1]

        def step(carry, xt):
            prev, t = carry
            a = [fns[0](xt)]
            new_prev = []
            for layer in range(1, net.n_layers):
                z = sum(a[pre] @ unpack(W, (pre, layer))[0] + unpack(W, (pre, layer))[1]
                        for pre in net.back_conns[layer])
                if layer in net.rec_layers:
                    w, b = unpack(W, (layer, layer))
                    z = z + jnp.where(t > 0, prev[layer] @ w, b)
                a.append(fns[layer](z))
            new_prev = {layer: a[layer] for layer in net.rec_layers}
            return (new_prev, t + 1), a[-1]

        prev0 = {layer: jnp.zeros((xs.shape[0], net.shape[layer]), xs.dtype)
                 for layer in net.rec_layers}
        _, out = jax.lax.scan(step, (prev0, 0), jnp.swapaxes(xs, 0, 1))
        return out

    W = jnp.asarray(net.W)
    xs = jnp.asarray(x)
    batch = x.shape[0]

    @jax.jit
    def gv(W, V):
        out, jv = jax.jvp(lambda w: outputs(w, xs), (W,), (V,))
        _, vjp = jax.vjp(lambda w: outputs(w, xs), W)
        return vjp(jv / batch)[0]

    fwd = jax.jit(lambda W: outputs(W, xs))
    V = jnp.asarray(v)
    return {"forward": median_time(lambda: fwd(W).block_until_ready(), repeats),
            "Gv": median_time(lambda: gv(W, V).block_until_ready(), repeats)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per figure (>= 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for numba and for both BLAS libraries (NumPy's and the "
                             "one the kernels call); default: the libraries' defaults")
    parser.add_argument("--problems", nargs="*", default=None, choices=list(PROBLEMS))
    parser.add_argument("--json", default="results/benchmark.json", help="output JSON path")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    if args.threads is not None:
        hf.set_num_threads(args.threads)
    names = args.problems or (QUICK if args.quick else list(PROBLEMS))

    threads = hf.kernels.thread_info()
    # the machine is shared: take the better of a measurement before and after the run
    sgemm_before = sgemm_gflops(args.repeats)
    rows_out = []
    results = {"threads": threads, "repeats": args.repeats,
               "python": platform.python_version(), "numpy": np.__version__,
               "argv": sys.argv[1:], "problems": {}}
    for name in names:
        net, x, y, v = build(name)
        flops = gv_flops(net, x.shape[0], x.shape[1] if x.ndim == 3 else None)
        rows = {}
        for backend in ("numba", "numpy"):
            rows[backend] = time_backend(net, x, y, v, backend, args.repeats)
        jax_times = time_jax(net, x, y, v, args.repeats)
        if jax_times is not None:
            rows["jax"] = jax_times
        rows_out.append((name, rows, flops))
        results["problems"][name] = {"seconds": rows, "gv_flops": flops,
                                     "target_gv_ms": TARGETS_MS[name],
                                     "batch": x.shape[0],
                                     "steps": x.shape[1] if x.ndim == 3 else None}
    sgemm = max(sgemm_before, sgemm_gflops(args.repeats))
    results["sgemm_gflops"] = sgemm
    print(f"# hfcontrol benchmark  python {platform.python_version()}  numpy {np.__version__}  "
          f"cpus {os.cpu_count()}  threads kernels={threads['kernels']} blas={threads['blas']} "
          f"(-1: library default)  float32 sgemm 2048^2: {sgemm:.1f} GFLOP/s (best of "
          f"before/after)  median of {args.repeats} after warm-up")
    header = (f"{'problem':15s} {'path':6s} {'forward ms':>11s} {'grad ms':>9s} {'Gv ms':>9s} "
              f"{'Gv GFLOP/s':>10s} {'% sgemm':>7s} {'Gv speed-up':>11s} {'Gv target ms':>12s}")
    print(header)
    print("-" * len(header))
    for name, rows, flops in rows_out:
        for backend, t in rows.items():
            gf = flops / t["Gv"] / 1e9
            speed = rows["numpy"]["Gv"] / t["Gv"]
            grad = f"{t['grad'] * 1e3:9.3f}" if "grad" in t else f"{'-':>9s}"
            target = f"{TARGETS_MS[name]:12.3g}" if backend == "numba" else f"{'':12s}"
            print(f"{name:15s} {backend:6s} {t['forward'] * 1e3:11.3f} {grad} "
                  f"{t['Gv'] * 1e3:9.3f} {gf:10.1f} {100 * gf / sgemm:6.0f}% {speed:10.1f}x "
                  f"{target}")
    if "jax" not in {b for p in results["problems"].values() for b in p["seconds"]}:
        print("# JAX not installed: skipped")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)
    print(f"# wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
