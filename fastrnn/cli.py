"""The ``fastrnn`` command (also ``python -m fastrnn``)."""
import argparse
import sys

from fastrnn import __version__


def _demo(args):
    from fastrnn.demo import run_assignment
    worst = run_assignment(seed=args.seed)
    return 0 if worst <= 1e-12 else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastrnn", description="Fast recurrent neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="the assignment of the lecture notes, step by step "
                                       "(what a bare `fastrnn` runs)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"] + list(argv or []))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
