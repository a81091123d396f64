"""Command line: ``bayesgain demo`` (more commands arrive with the data and model issues)."""

import argparse
import sys


def _demo(args):
    from . import demo

    ok = demo.run(args.out, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                  progress=not args.quiet)
    return 0 if ok or not args.strict else 3


def build_parser():
    parser = argparse.ArgumentParser(prog="bayesgain", description="Bayesian analysis of optical gain in doped QD films")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="fit the demo (synthetic SEC charging -> gain threshold) and print the results")
    d.add_argument("--out", default="bayesgain-demo", help="output folder (default: ./bayesgain-demo)")
    d.add_argument("--draws", type=int, default=500, help="posterior draws per chain (default 500)")
    d.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    d.add_argument("--chains", type=int, default=2, help="chains (default 2)")
    d.add_argument("--seed", type=int, default=1, help="random seed: same seed, same posterior (default 1)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--strict", action="store_true", help="exit with status 3 when the fit did not converge")
    d.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
