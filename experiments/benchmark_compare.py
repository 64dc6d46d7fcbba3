"""Compare the network benchmark of two versions of the code in one run.

Usage::

    python experiments/benchmark_compare.py --baseline REV [--rounds 3] [--repeats 7]
        [--problems rnn-plant rnn-small ...] [--threads N]
        [--json results/benchmark_compare.json]

``REV`` (a commit, tag or branch) is checked out into a git worktree under
``results/baseline-REV`` (made once, reused). The script then runs
``experiments/benchmark.py`` of the baseline and of the working tree alternately,
``--rounds`` times each, each run in a fresh process whose imports come from its own
tree, and prints, per problem and path, the median over the rounds of each run's
median times, with the ratio new / old (below 1: the new code is faster). Alternating
the two puts the machine's drift on both. Each tree keeps its own numba cache, so a
first round may include compilation only for the warm-up calls, which are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worktree(rev: str) -> Path:
    """A checkout of ``rev`` (made with ``git worktree add`` the first time)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    path = ROOT / "results" / f"baseline-{sha}"
    if not (path / "hfcontrol").is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha],
                       check=True, capture_output=True)
    return path


def _run(tree: Path, args: list[str]) -> dict:
    """One run of ``tree``'s benchmark script, in a process importing ``tree``'s code."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        env = dict(os.environ, PYTHONPATH=str(tree))
        subprocess.run([sys.executable, str(tree / "experiments" / "benchmark.py"), *args,
                        "--json", str(out)], check=True, cwd=tree, env=env,
                       stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each version")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--problems", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="passed to both versions' benchmark.py (e.g. 1 for one core)")
    parser.add_argument("--json", default="results/benchmark_compare.json")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    old_tree = _worktree(args.baseline)
    bench_args = ["--repeats", str(args.repeats)]
    if args.problems:
        bench_args += ["--problems", *args.problems]
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        bench_args += ["--threads", str(args.threads)]
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for label, tree in (("old", old_tree), ("new", ROOT)) if r % 2 == 0 else (
                ("new", ROOT), ("old", old_tree)):
            print(f"# round {r + 1}/{args.rounds}: {label}", file=sys.stderr, flush=True)
            runs[label].append(_run(tree, bench_args))

    def median(label, problem, path, op):
        return statistics.median(run["problems"][problem]["seconds"][path][op]
                                 for run in runs[label])

    problems = list(runs["new"][0]["problems"])
    print(f"# new = working tree, old = {args.baseline} ({old_tree.name}); medians over "
          f"{args.rounds} alternated runs, each a median of {args.repeats}; ratio = new / old")
    header = f"{'problem':15s} {'path':6s} {'op':8s} {'old ms':>10s} {'new ms':>10s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    table = []
    for problem in problems:
        for path in ("numba", "numpy"):
            for op in ("forward", "grad", "Gv"):
                if op not in runs["new"][0]["problems"][problem]["seconds"][path]:
                    continue
                old, new = median("old", problem, path, op), median("new", problem, path, op)
                table.append({"problem": problem, "path": path, "op": op, "old_s": old,
                              "new_s": new, "ratio": new / old})
                print(f"{problem:15s} {path:6s} {op:8s} {old * 1e3:10.4f} {new * 1e3:10.4f} "
                      f"{new / old:7.2f}")
        speedup = median("new", problem, "numpy", "Gv") / median("new", problem, "numba", "Gv")
        print(f"{problem:15s} compiled G v speed-up over NumPy (new code): {speedup:.1f}x")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"baseline": args.baseline, "rounds": args.rounds,
                                "table": table, "runs": runs}, indent=2))
    print(f"# wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
