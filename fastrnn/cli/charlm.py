"""``fastrnn train`` and ``fastrnn sample``: a character-level language
model, the job of Karpathy's min-char-rnn, on the compiled kernels.

The text is one long sequence of character ids, or with ``--streams B``
B contiguous pieces of it trained side by side (char-rnn's batches: the
kernels then multiply matrices instead of a matrix and a vector). Every
epoch is one pass over the text in chunks of ``--bptt`` steps, each chunk
one update, every stream's state carried from chunk to chunk (truncated
BPTT). Training runs as a series of ``fit`` calls with ``warm_start=True``
up to the next sample or log line; the random stream is one Generator
across them, so the parameters are bit for bit those of one ``fit`` call
over all the epochs.

Ctrl-C stops training after the running update (within about a second),
saves the model and exits with 130; a further Ctrl-C waits until the file
is written. If --out cannot be written at the end, the model goes to a file
in the temporary directory, named in the error.
"""
import math
import os
import re
import tempfile
import time

import numpy as np

from fastrnn._cells import CELLS
from fastrnn._interrupt import HeldInterrupt
from fastrnn._layout import Architecture
from fastrnn._modelfile import ModelFileError
from fastrnn._progress import ProgressLine, format_clock
from fastrnn._validation import check_network_size
from fastrnn.cli._util import (MATPLOTLIB_MISSING, CLIError, SlowNote, check_writable,
                               matplotlib_available, stdout_is_terminal)
from fastrnn.cli.text import DEFAULT_TEXT_NAME, default_text, read_text
from fastrnn.estimator import DEFAULT_LEARNING_RATES, FastRNN
from fastrnn.vocab import CharVocab

# min-char-rnn clips every gradient entry to [-5, 5]; so does `fastrnn train`.
CLIP = 5.0
SAMPLE_CHARS = 200
EXIT_INTERRUPTED = 130


def _streams(ids, n_streams, bptt):
    """(X, y): the text's next-character pairs as one sequence, or as
    ``n_streams`` contiguous pieces of equal length (the remainder, fewer
    than n_streams characters, is left out)."""
    X, y = ids[:-1], ids[1:]
    if n_streams == 1:
        return X, y
    length = len(X) // n_streams
    if length < 1:
        raise CLIError(f"--streams {n_streams}: the text has only {len(X) + 1} characters")
    cut = n_streams * length
    return X[:cut].reshape(n_streams, length), y[:cut].reshape(n_streams, length)


class _Progress:
    """The progress line: epoch, progress within it, loss per character and
    speed; a line is kept every ``log_every`` epochs."""

    def __init__(self, epochs, n_chars, streams, out, live):
        # An epoch's loss is the mean over the streams of each one's summed
        # cross-entropy: per character, times the streams over the characters.
        self.epochs, self.n_chars, self.per_char = epochs, n_chars, streams / n_chars
        self.width = len(str(epochs))
        self.line = ProgressLine(_Writer(out), live=live)
        self.start = time.perf_counter()
        self.mark_chars, self.mark_time = 0, self.start

    def text(self, done, steps_in_epoch, losses):
        now = time.perf_counter()
        chars = done * self.n_chars + steps_in_epoch
        speed = (chars - self.mark_chars) / (now - self.mark_time) if now > self.mark_time \
            else float("nan")
        within = f" +{100 * steps_in_epoch / self.n_chars:3.0f}%" if steps_in_epoch else "     "
        loss = f"{losses[-1] * self.per_char:6.3f}" if losses else "     -"
        speed_text = f"{speed:>9,.0f}" if math.isfinite(speed) else f"{'-':>9}"
        return (f"epoch {done:>{self.width}}/{self.epochs}{within}   loss/char {loss}   "
                f"{speed_text} chars/s   {format_clock(now - self.start)}")

    def show(self, done, steps_in_epoch, losses, keep=False):
        self.line.show(self.text(done, steps_in_epoch, losses), keep=keep)
        if keep:
            self.mark_chars = done * self.n_chars + steps_in_epoch
            self.mark_time = time.perf_counter()


class _Writer:
    """The ``out`` callable as the stream ProgressLine writes to."""

    def __init__(self, out):
        self.out = out

    def write(self, text):
        self.out(text, end="")

    def flush(self):
        pass

    def isatty(self):
        return False


def _print_sample(model, primer, rng, out, temperature=1.0):
    text = primer + model.sample_text(SAMPLE_CHARS, start=primer, temperature=temperature,
                                      random_state=rng)
    for line in text.rstrip("\n").split("\n"):
        out(f"    | {line}".rstrip())


def _n_parameters(args, k):
    return Architecture(args.cell, k, args.hidden, k, args.layers).n_params


# Values of the parameters' size held during training: the parameters, the
# gradient, two optimizer moments (adam's; the others hold fewer) and the
# copy kept to restore them after a non-finite update.
COPIES_OF_THE_PARAMETERS = 5


def _check_model_size(args, k):
    """Refuse a network beyond fastrnn's size limit, or one whose parameters
    alone (times the copies training holds) exceed the machine's memory,
    before anything is allocated."""
    try:
        check_network_size(Architecture(args.cell, k, args.hidden, k, args.layers))
    except ValueError as exc:
        raise CLIError(f"--hidden {args.hidden}, --layers {args.layers}: {exc}") from None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    needed = _n_parameters(args, k) * np.dtype(args.dtype).itemsize * COPIES_OF_THE_PARAMETERS
    if needed > memory:
        raise CLIError(f"--hidden {args.hidden}, --layers {args.layers}: training "
                       f"{_n_parameters(args, k):,} parameters needs more than "
                       f"{needed / 2**30:.1f} GiB; this machine has {memory / 2**30:.1f} GiB")


def _warm_up(args, ids, vocab, out):
    """Run the kernels once on a few characters, so that compiling them (on
    the first run; later runs load them from Numba's cache) is not counted
    in the speed and the user is told what the wait is."""
    start = time.perf_counter()
    note = SlowNote("(compiling the training kernels: the first run only, up to a minute; "
                    "later runs load them from Numba's cache)", out)
    with note:
        X, y = _streams(ids[:args.streams * 2 + 1], args.streams, args.bptt)
        model = FastRNN(n_hidden=2, cell=args.cell, optimizer=args.optimizer, epochs=1,
                        bptt=args.bptt, clip=CLIP, clip_mode="value", n_layers=args.layers,
                        dropout=args.dropout, batch_size=args.streams, shuffle=False,
                        random_state=0, dtype=args.dtype)
        model.fit(X, y, vocab=vocab)
        model.sample(2, start=ids[:1], random_state=0)
    if note.fired:
        out(f"(ready after {time.perf_counter() - start:.1f} s)")


def train(args, out):
    # --------------------------------------------------------------- inputs
    if args.dropout and args.layers == 1:
        raise CLIError(f"--dropout {args.dropout:g}: dropout acts between stacked layers; "
                       "give --layers 2 or more (got --layers 1)", code=2)
    if args.text_file is None:
        text, source = default_text(), DEFAULT_TEXT_NAME
    else:
        text, source = read_text(args.text_file), args.text_file
    if not text:
        raise CLIError(f"{args.text_file}: the text is empty")
    if len(text) < args.streams * args.bptt + 1:
        raise CLIError(f"{source}: the text has {len(text)} characters; --streams "
                       f"{args.streams} of --bptt {args.bptt} need at least "
                       f"{args.streams * args.bptt + 1} (use a longer text, or a smaller "
                       f"--bptt or --streams)")
    check_writable(args.out, "--out")
    if args.plot is not None:
        check_writable(args.plot, "--plot")
    plot_possible = args.plot is None or matplotlib_available()

    vocab = CharVocab(text)
    ids = vocab.encode(text)
    _check_model_size(args, len(vocab))
    X, y = _streams(ids, args.streams, args.bptt)
    n_chars = X.size
    per_char = args.streams / n_chars           # an epoch's loss is a mean over the streams
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES[args.optimizer]
    k = len(vocab)
    epochs = args.epochs
    log_every = max(1, epochs // 10)
    sample_every = max(1, epochs // 5) if args.sample_every is None else args.sample_every

    out(f"Text: {source}, {len(text):,} characters, {k} distinct")
    layers = f"{args.layers} layers of " if args.layers > 1 else ""
    out(f"Model: {layers}{CELLS[args.cell].about.split(':')[0]}, {args.hidden} hidden units, "
        f"{_n_parameters(args, k):,} parameters"
        + (", float32" if args.dtype == "float32" else "")
        + (f", dropout {args.dropout:g} between layers" if args.dropout else ""))
    streams = f"{args.streams} streams of {X.shape[-1]:,} characters side by side, " \
        if args.streams > 1 else ""
    out(f"Training: {args.optimizer}, learning rate {lr:g}, {streams}truncated BPTT over "
        f"{args.bptt} characters, gradient entries clipped to ±{CLIP:g}, seed {args.seed}")
    out(f"{epochs} epochs (one epoch = one pass over the text); Ctrl-C stops after the running "
        f"update and saves the model.")
    out(f"loss/char: the cross-entropy per character in nats (guessing uniformly: ln {k} = "
        f"{math.log(k):.2f}).")
    if not plot_possible:
        out(f"Note: {MATPLOTLIB_MISSING}. Training runs and saves anyway.")
    out("")
    try:
        _warm_up(args, ids, vocab, out)
    except KeyboardInterrupt:
        raise CLIError("stopped before training started; nothing to save",
                       code=EXIT_INTERRUPTED) from None

    # ------------------------------------------------------------ training
    rng = np.random.default_rng(args.seed)
    model = FastRNN(n_hidden=args.hidden, cell=args.cell, optimizer=args.optimizer,
                    learning_rate=lr, epochs=1, bptt=args.bptt, clip=CLIP, clip_mode="value",
                    n_layers=args.layers, dropout=args.dropout, batch_size=args.streams,
                    shuffle=False, random_state=rng, warm_start=True, dtype=args.dtype)
    sample_rng = np.random.default_rng([args.seed, 1])
    progress = _Progress(epochs, n_chars, args.streams, out, live=stdout_is_terminal())
    done, diverged, interrupted, fitting = 0, None, False, False

    def report(epochs_done, running, losses):
        progress.show(done + epochs_done, int(running[2]), model_losses + losses)

    # Ctrl-C is caught around the whole loop: it may come while a progress
    # line or a sample prints, between two fit calls, and the model is saved
    # all the same.
    try:
        while done < epochs:
            due = [epochs, (done // log_every + 1) * log_every]
            if sample_every:
                due.append((done // sample_every + 1) * sample_every)
            model.epochs = min(due) - done
            model_losses = list(getattr(model, "loss_curve_", []))
            fitting = True
            try:
                model._fit(X, y, vocab=vocab, report=report)
            except FloatingPointError as exc:
                diverged = exc
            fitting = False
            done = len(getattr(model, "loss_curve_", ()))
            if diverged is not None:
                break
            sample_now = sample_every and (done % sample_every == 0 or done == epochs)
            progress.show(done, 0, model.loss_curve_, keep=True)
            if sample_now:
                _print_sample(model, text[0], sample_rng, out)
    except KeyboardInterrupt:
        interrupted = True
    except MemoryError:
        raise CLIError(f"not enough memory to train {_n_parameters(args, k):,} parameters; "
                       f"use a smaller --hidden (was {args.hidden})") from None
    # From here until the file is written, a further Ctrl-C is held: the
    # model is saved whole, then the exit code says it came.
    with HeldInterrupt() as held:
        done = len(getattr(model, "loss_curve_", ()))
        progress.line.clear()

        # --------------------------------------------------------- the end
        reason = None
        if diverged is not None:
            match = re.match(r"fit: (.*?) in epoch (\d+), update (\d+)", str(diverged))
            reason = match.group(1) if match else "the loss or parameters became non-finite"
            where = f"epoch {match.group(2)}, update {match.group(3)}" if match \
                else f"epoch {done + 1}"
            out(f"Training diverged in {where}: {reason}.")
        elif interrupted:
            out(f"Interrupted (Ctrl-C) after {done} of {epochs} epochs"
                + (" and part of the next." if fitting and hasattr(model, "params_") else "."))
        if not hasattr(model, "params_"):
            raise CLIError("stopped before the first update; nothing to save",
                           code=EXIT_INTERRUPTED if interrupted else 1)
        # Saved as if one fit had run all the epochs (which gives the same parameters).
        model.set_params(epochs=max(done, 1), warm_start=False, random_state=args.seed)
        model.n_iter_ = done
        saved, failure = _save_model(model, args.out)
    interrupted = interrupted or held.hit
    loss_text = f" (loss/char {model.loss_curve_[-1] * per_char:.3f})" if model.loss_curve_ \
        else ""
    if failure is not None:
        out(f"Could not write --out {args.out} ({failure}).")
    out(f"Saved the model after {done} epoch{'s' if done != 1 else ''}{loss_text} to {saved}")
    out(f"Generate text with: fastrnn sample {_quote(saved)}")
    if failure is not None:
        raise CLIError(f"--out {args.out}: {failure}; the model is in {saved}")
    if args.plot is not None and model.loss_curve_:
        if not plot_possible:
            raise CLIError(MATPLOTLIB_MISSING)
        from fastrnn.cli.plot import plot_loss_curve
        title = f"fastrnn train: {args.cell}, {args.hidden} hidden units, {args.optimizer}, " \
                f"lr {lr:g}"
        plot_loss_curve(args.plot, np.asarray(model.loss_curve_) * per_char, title)
        out(f"Saved the loss curve to {args.plot}")
    if diverged is not None:
        raise CLIError(f"training diverged ({reason}); try a smaller --lr (was {lr:g})")
    return EXIT_INTERRUPTED if interrupted else 0


def _save_model(model, path):
    """Save to ``path``; if that fails (the disk filled up, the file was
    made read-only during training...), to a file of its own in the
    temporary directory, so that no training is lost. Returns the path
    written and why ``path`` failed (None if it did not)."""
    try:
        return model.save(path), None
    except (OSError, ModelFileError) as exc:
        failure = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    fd, rescue = tempfile.mkstemp(prefix="fastrnn-train-", suffix=".npz")
    os.close(fd)
    try:
        return model.save(rescue), failure
    except (OSError, ModelFileError) as exc:
        os.unlink(rescue)                           # the empty file mkstemp made
        raise CLIError(f"--out {path}: {failure}; saving to {rescue} failed too: {exc}") \
            from None


def _quote(path):
    return path if path and all(ch.isalnum() or ch in "._-/+:@" for ch in path) else repr(path)


# ----------------------------------------------------------------- sample
def load_char_model(path):
    """A FastRNN with a character vocabulary, from a file written by
    ``fastrnn train`` (or ``FastRNN.save``); CLIError otherwise."""
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; expected a model file (.npz)")
    try:
        model = FastRNN.load(path)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except (ModelFileError, ValueError, OSError) as exc:
        message = str(exc)
        raise CLIError(message if message.startswith(str(path))
                       else f"{path}: not a valid fastrnn model file ({message})") from None
    if model.vocab_ is None:
        raise CLIError(f"{path}: this fastrnn model has no character vocabulary (it was not "
                       f"trained on text), so it cannot generate text")
    return model


def sample(args, out):
    model = load_char_model(args.model)
    chars = model.vocab_.chars
    rng = np.random.default_rng(args.seed)
    if args.start is None:
        start = chars[rng.integers(len(chars))]
    else:
        start = args.start
        if not start:
            raise CLIError("--start: expected at least one character")
        missing = "".join(sorted(set(start) - set(chars)))
        if missing:
            raise CLIError(f"--start: {_describe_chars(missing)} not in the model's vocabulary "
                           f"of {len(chars)} characters: {chars!r}")
    try:
        text = model.sample_text(args.length, start=start, temperature=args.temperature,
                                 random_state=rng)
    except ValueError as exc:
        raise CLIError(f"{args.model}: {exc}") from None
    out(start + text)
    return 0


def _describe_chars(missing):
    listed = ", ".join(repr(ch) for ch in missing[:10]) + (", ..." if len(missing) > 10 else "")
    return f"the character {listed} is" if len(missing) == 1 else f"the characters {listed} are"

