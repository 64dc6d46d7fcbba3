"""The command line shared by the reaching scripts (``arm_reach.py``, ``arm3_reach.py``,
``muscle_arm_reach.py``): each trains one recipe of :mod:`hfcontrol.recipes` into a run
folder with :func:`hfcontrol.runs.train_run`, its options as flags."""

from __future__ import annotations

import argparse
import sys
import time

#: the flags of the two senses (proprioception, vision) and the recipe option of each
SENSE_FLAGS = {"--proprioception-delay": ("proprioception_delay", "s, a multiple of 10 ms"),
               "--vision-delay": ("vision_delay", "s, a multiple of 10 ms"),
               "--proprioception-noise": ("proprioception_noise", "rad and rad/s"),
               "--vision-noise": ("vision_noise", "m")}


def main(task: str, description: str, argv=None, *, hidden: int, delay: int = 0,
         obs_noise: float = 0.0, updates: int, quick_batch: int = 16,
         quick_updates: int = 3, senses: bool = False) -> int:
    """Parse ``--out --delay --obs-noise --updates --seed --hidden --quick`` (bad values
    exit 2) and train ``task``'s recipe; returns the exit code. With ``senses`` the
    recipe has two senses, and ``--proprioception-delay --vision-delay
    --proprioception-noise --vision-noise`` (default: the recipe's) replace ``--delay``
    and ``--obs-noise``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True, help="output folder")
    if senses:
        for flag, (option, unit) in SENSE_FLAGS.items():
            parser.add_argument(flag, type=float, default=None, dest=option,
                                help=f"{option.replace('_', ' ')} ({unit}; default: "
                                     f"hfcontrol.observation.ARM_SENSE_DEFAULTS)")
    else:
        parser.add_argument("--delay", type=int, default=delay,
                            help=f"sensory delay in steps of 10 ms (default {delay})")
        parser.add_argument("--obs-noise", type=float, default=obs_noise,
                            help=f"standard deviation of the observation noise (rad, rad/s; "
                                 f"default {obs_noise})")
    parser.add_argument("--updates", type=int, default=None,
                        help=f"updates (default {updates})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=hidden,
                        help=f"recurrent units (default {hidden})")
    parser.add_argument("--quick", action="store_true", help="a few updates (for the tests)")
    args = parser.parse_args(argv)
    if senses:
        given = {option: getattr(args, option) for option, _ in SENSE_FLAGS.values()
                 if getattr(args, option) is not None}
        if any(value < 0 for value in given.values()):
            parser.error(f"{', '.join(SENSE_FLAGS)} must be >= 0")
    else:
        given = {"delay": args.delay, "obs_noise": args.obs_noise}
        if args.delay < 0 or args.obs_noise < 0:
            parser.error("--delay and --obs-noise must be >= 0")
    if args.hidden < 1 or args.seed < 0:
        parser.error("--seed must be >= 0, --hidden >= 1")
    if args.updates is not None and args.updates < 1:
        parser.error("--updates must be >= 1")
    started = time.perf_counter()  # before the import: loading the kernels counts
    from hfcontrol import runs  # the recipe and the run folder live in the package

    options = {"hidden": args.hidden, **given}
    if args.quick:
        options["batch"] = quick_batch
    metrics = runs.train_run(task, args.out, seed=args.seed,
                             updates=args.updates or (quick_updates if args.quick else None),
                             options=options, progress=not args.quick and sys.stderr.isatty(),
                             started=started)
    print(f"{metrics['summary']} (compilation included); wrote {args.out}/")
    return 0
