"""The ``fastrnn`` command (also ``python -m fastrnn``).

    fastrnn demo      the assignment of the lecture notes (what a bare `fastrnn` runs)
    fastrnn train     a character-level language model (min-char-rnn's job)
    fastrnn sample    text from a model saved by `fastrnn train`
    fastrnn bench     the kernels against the NumPy reference and PyTorch

A user's mistake (a missing file, a bad option value, ...) ends the command
with one line ``fastrnn: error: ...`` on stderr and a non-zero exit code:
2 for a bad command line, 1 for anything else, 130 after Ctrl-C.
"""
import argparse
import functools
import math
import os
import sys
import textwrap

from fastrnn import __version__, _limits
from fastrnn._cells import CELL_NAMES
from fastrnn._codes import OPTIMIZERS
from fastrnn.cli._util import (CLIError, int_between, bounded_positive_int, non_negative_int,
                               positive_float, positive_int, seed)
from fastrnn.cli.why import MIN_STEPS as WHY_MIN_STEPS
from fastrnn.estimator import DEFAULT_LEARNING_RATES


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line like every other error."""

    def error(self, message):
        self.exit(2, f"fastrnn: error: {message} (see: {self.prog} --help)\n")


def _demo(args, out):
    from fastrnn.cli.demo import read_params, run_assignment
    params = None if args.params is None else read_params(args.params)
    worst = run_assignment(seed=args.seed, out=out, params=params)
    return 0 if worst <= 1e-12 else 1


def _train(args, out):
    from fastrnn.cli.charlm import train
    return train(args, out)


def _sample(args, out):
    from fastrnn.cli.charlm import sample
    return sample(args, out)


def _bench(args, out):
    from fastrnn.cli.bench import run
    return run(args, out)


def _cache(args, out):
    from fastrnn.cli.cache import run
    return run(args, out)


def _why(args, out):
    from fastrnn.cli.why import run
    return run(args, out)


def _dropout(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _text(*paragraphs):
    """Help text: each paragraph filled to 79 columns; one of several lines
    (a list, examples) is kept as written."""
    return "\n\n".join(p if "\n" in p else textwrap.fill(p, 79) for p in paragraphs)


COMMANDS = """\
  demo     the assignment of the lecture notes, step by step (the default)
  train    train a character-level language model on a text
  sample   generate text from a model saved by `fastrnn train`
  bench    time the kernels against the NumPy reference (and PyTorch)
  why      the notes' "Why?": how far back gradients reach, simple RNN vs LSTM
  cache    where the compiled kernels are; compile them all, or remove them"""


def build_parser():
    from fastrnn.cli.cases import CASES

    formatter = functools.partial(argparse.RawDescriptionHelpFormatter, max_help_position=28)
    parser = _Parser(
        prog="fastrnn", formatter_class=formatter,
        usage="fastrnn [-h] [--version] [COMMAND] ...",
        description=_text("Fast recurrent neural networks on the CPU.", "commands:\n" + COMMANDS,
                          "Without a command, `fastrnn` runs `fastrnn demo`. "
                          "`fastrnn COMMAND --help` tells more about each."))
    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)

    demo = sub.add_parser(
        "demo", prog="fastrnn demo", formatter_class=formatter,
        help="the assignment of the lecture notes, step by step (what a bare `fastrnn` runs)",
        description=_text(
            "The assignment of the lecture notes: a simple RNN with k=4 inputs, d=3 hidden units, "
            "T=3 steps. Prints the inputs and targets, every h_t and y^_t, the loss and every "
            "gradient, and how far the Numba kernels and the NumPy reference are apart; then "
            "trains FastRNN(n_hidden=3) until it predicts the shifted sequence [1 2 3], and "
            "times that training on both backends."))
    demo.add_argument("--seed", type=seed, default=0, metavar="N",
                      help="seed of the initial weights (default: 0)")
    demo.add_argument("--params", metavar="FILE",
                      help="your own initial weights, an .npz file (numpy.savez) with the arrays "
                           "W_X (d, 4), W_H (d, d), b_h (d,), W_Y (4, d), b_y (4,), to check "
                           "your numbers against fastrnn's")
    demo.set_defaults(func=_demo)

    train = sub.add_parser(
        "train", prog="fastrnn train", formatter_class=formatter,
        help="train a character-level language model on a text",
        description=_text(
            "Train a character-level language model (the job of min-char-rnn): the network reads "
            "the text one character at a time and learns to predict the next one. Prints the "
            "loss per character and the speed as it goes, a sample of generated text every so "
            "often, and saves the model at the end (also when stopped with Ctrl-C)."),
        epilog="examples:\n"
               "  fastrnn train                        # the default text, 100 epochs\n"
               "  fastrnn train input.txt --cell lstm --epochs 20 --out shakespeare.npz\n"
               "  fastrnn sample model.npz --start 'Beautiful' --temperature 0.7")
    train.add_argument("text_file", nargs="?", metavar="TEXT_FILE",
                       help="a UTF-8 text file (default: the Zen of Python and the docstrings "
                            "of fastrnn's modules, a few thousand characters that every "
                            "installation has)")
    train.add_argument("--cell", choices=CELL_NAMES, default="rnn",
                       help="rnn: the simple RNN (tanh) of the notes; lstm; gru (default: rnn)")
    # A network of d hidden units has at least d² parameters.
    train.add_argument("--hidden", type=bounded_positive_int(math.isqrt(_limits.MAX_PARAMETERS)),
                       default=100,
                       metavar="N", help="hidden units (default: 100)")
    train.add_argument("--layers", type=bounded_positive_int(_limits.MAX_LAYERS), default=1,
                       metavar="N", help="stacked layers (default: 1)")
    train.add_argument("--dropout", type=_dropout, default=0.0, metavar="P",
                       help="dropout between layers, in [0, 1) (default: 0)")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="the precision of the network (default: float64)")
    train.add_argument("--streams", type=positive_int, default=1, metavar="B",
                       help="cut the text into B pieces trained side by side, each carrying its "
                            "own state, as char-rnn's batches: faster per character (default: 1)")
    train.add_argument("--bptt", type=positive_int, default=25, metavar="N",
                       help="characters per truncated-BPTT chunk, one update each (default: 25)")
    train.add_argument("--epochs", type=bounded_positive_int(_limits.MAX_EPOCHS), default=100,
                       metavar="N",
                       help="passes over the text (default: 100)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adagrad",
                       help="(default: adagrad)")
    train.add_argument("--lr", type=positive_float, default=None, metavar="X",
                       help="learning rate (default: " + ", ".join(
                           f"{rate:g} for {name}" for name, rate in
                           DEFAULT_LEARNING_RATES.items()) + ")")
    train.add_argument("--seed", type=seed, default=0, metavar="N",
                       help="seed of the initial weights and of the samples (default: 0)")
    train.add_argument("--out", default="model.npz", metavar="MODEL",
                       help="where to save the model (default: model.npz)")
    train.add_argument("--plot", metavar="PNG",
                       help="also draw the loss curve into this PNG file (needs matplotlib)")
    train.add_argument("--sample-every", type=non_negative_int, default=None, metavar="N",
                       help="print a sample of generated text every N epochs; 0: never "
                            "(default: a fifth of --epochs)")
    train.set_defaults(func=_train)

    sample = sub.add_parser(
        "sample", prog="fastrnn sample", formatter_class=formatter,
        help="generate text from a model saved by `fastrnn train`",
        description=_text(
            "Generate text from a character-level model saved by `fastrnn train` (or by "
            "FastRNN.save, of a model fitted with a CharVocab). Prints the start text, then "
            "--length generated characters, each drawn from the predicted distribution and fed "
            "back in."))
    sample.add_argument("model", metavar="MODEL", help="a model file (.npz)")
    sample.add_argument("--length", type=bounded_positive_int(_limits.MAX_SAMPLE_STEPS),
                        default=500, metavar="N",
                        help="characters to generate (default: 500)")
    sample.add_argument("--temperature", type=positive_float, default=1.0, metavar="T",
                        help="below 1: more likely characters, more repetitive; above 1: more "
                             "varied, more mistakes (default: 1.0)")
    sample.add_argument("--start", metavar="TEXT",
                        help="text to start from, made of characters the model knows "
                             "(default: one random character of its vocabulary)")
    sample.add_argument("--seed", type=seed, default=None, metavar="N",
                        help="seed of the random draws, for the same text every time "
                             "(default: different every run)")
    sample.set_defaults(func=_sample)

    bench = sub.add_parser(
        "bench", prog="fastrnn bench", formatter_class=formatter,
        help="time the kernels against the NumPy reference (and PyTorch, if installed)",
        description=_text(
            "Time one fastrnn.loss_and_grad call (forward pass and backpropagation through time) "
            "on named cases: the NumPy reference (backend='numpy') against the Numba kernel "
            "(backend='numba'), and PyTorch in float32 and float64 on the same network and data "
            "when torch is installed. Each time is the median of --repeat calls after a warm-up "
            "call (compilation is not counted).",
            "cases:\n" + "\n".join(f"  {c.name:<7} {c.about} (k={c.k}, d={c.d}, T={c.T}, B={c.B})"
                                   for c in CASES.values())))
    bench.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                       metavar="CASE", help="which cases (default: all of them)")
    bench.add_argument("--cells", nargs="+", choices=CELL_NAMES, default=list(CELL_NAMES),
                       metavar="CELL", help="rnn, lstm and/or gru (default: all three)")
    bench.add_argument("--repeat", type=positive_int, default=10, metavar="N",
                       help="timed calls per measurement (default: 10)")
    bench.add_argument("--plot", metavar="PNG",
                       help="also draw the ratios as a bar chart into this PNG file "
                            "(needs matplotlib)")
    bench.set_defaults(func=_bench)

    why = sub.add_parser(
        "why", prog="fastrnn why", formatter_class=formatter,
        help="the notes' \"Why?\": how far back gradients reach, simple RNN vs LSTM",
        description=_text(
            "The lecture notes end with the LSTM and the question \"Why?\". This command "
            "trains nothing: a simple RNN and an LSTM of the same size, at their initial "
            "weights, read the same random inputs with a loss at the last step only, and the "
            "table shows how the gradient of that loss with respect to the hidden state k steps "
            "back shrinks with k, for each of them, with a paragraph on why."))
    why.add_argument("--hidden", type=bounded_positive_int(4096), default=32, metavar="N",
                     help="hidden units (default: 32)")
    why.add_argument("--steps", type=int_between(WHY_MIN_STEPS, f"an integer of at least "
                                                  f"{WHY_MIN_STEPS}", 100_000),
                     default=60, metavar="T",
                     help=f"length of the input sequence, at least {WHY_MIN_STEPS} "
                          "(default: 60)")
    why.add_argument("--seed", type=seed, default=0, metavar="N",
                     help="seed of the weights and inputs (default: 0)")
    why.add_argument("--plot", metavar="PNG",
                     help="also draw the two curves into this PNG file (needs matplotlib)")
    why.set_defaults(func=_why)

    cache = sub.add_parser(
        "cache", prog="fastrnn cache", formatter_class=formatter,
        help="where the compiled kernels are; compile them all, or remove them",
        description=_text(
            "Numba compiles fastrnn's kernels on their first use and keeps them in a cache "
            "(beside the installed package, or below NUMBA_CACHE_DIR), so later runs start in "
            "about a second. Without options this command says where they are and how big. "
            "--compile compiles every kernel ahead of time (for a Docker image, or a cluster "
            "that shares one NUMBA_CACHE_DIR); --clear removes them (pip uninstall does not)."))
    cache.add_argument("--compile", action="store_true",
                       help="compile every kernel now (several minutes)")
    cache.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64"],
                       metavar="DTYPE", help="with --compile: the precisions to compile for "
                                             "(default: float64)")
    cache.add_argument("--clear", action="store_true", help="remove the compiled kernels")
    cache.set_defaults(func=_cache)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["demo"] + argv               # a bare `fastrnn` (or `fastrnn --seed 1`) is the demo
    args = parser.parse_args(argv)
    out = functools.partial(print, flush=True)
    try:
        return args.func(args, out)
    except CLIError as exc:
        sys.stdout.flush()
        print(f"fastrnn: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\nfastrnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fastrnn sample model.npz | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:             # a file that could not be written (a full disk...)
        sys.stdout.flush()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fastrnn: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
