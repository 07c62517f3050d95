"""``fastrnn train`` and ``fastrnn sample``: a character-level language
model, the job of Karpathy's min-char-rnn, on the compiled kernels.

The text is one long sequence of character ids; every epoch is one pass
over it in chunks of ``--bptt`` steps, each chunk one update, the hidden
state carried from chunk to chunk (truncated BPTT). Training runs as a
series of ``FastRNN.fit`` calls with ``warm_start=True``, a few epochs per
call (about a quarter of a second of work), so the progress line and the
samples appear while it learns; the parameters are bit-for-bit those of one
``fit`` call over all the epochs.
"""
import math
import os
import re
import time
import warnings
import zipfile

import numpy as np

from fastrnn._cliutil import (MATPLOTLIB_MISSING, CLIError, SlowNote, check_writable,
                              format_clock, matplotlib_available, stdout_is_terminal)
from fastrnn._interrupt import HeldInterrupt
from fastrnn._text import DEFAULT_TEXT_NAME, default_text, read_text
from fastrnn.estimator import DEFAULT_LEARNING_RATES, FastRNN
from fastrnn.vocab import CharVocab

# min-char-rnn clips every gradient entry to [-5, 5]; so does `fastrnn train`.
CLIP = 5.0
SAMPLE_CHARS = 200
# Each fit call runs about this long, so the live progress line moves and
# Ctrl-C is answered within a fraction of a second (on a short text).
CALL_SECONDS = 0.25
# Without a terminal (output to a file or a pipe) a progress line is printed
# at least this often, so long runs show that they are alive.
LOG_SECONDS = 10.0
EXIT_INTERRUPTED = 130
CELL_NAMES = {"rnn": "simple RNN (tanh)", "lstm": "LSTM"}


def _n_parameters(cell, k, d):
    gates = 4 if cell == "lstm" else 1
    return gates * d * (k + d + 1) + k * (d + 1)


class _Progress:
    """The progress line: on a terminal it is rewritten in place after every
    fit call, and kept (a new line) at every ``log_every`` epochs; elsewhere
    only the kept lines are printed."""

    def __init__(self, epochs, n_steps, out, live):
        self.epochs, self.n_steps, self.out, self.live = epochs, n_steps, out, live
        self.width = len(str(epochs))
        self.start = time.perf_counter()
        self.mark_done, self.mark_train, self.mark_time = 0, 0.0, self.start
        self.train_seconds = 0.0
        self._live_length = 0

    def _line(self, done, loss):
        trained = self.train_seconds - self.mark_train
        speed = (done - self.mark_done) * self.n_steps / trained if trained > 0 else float("nan")
        speed_text = f"{speed:>9,.0f}" if math.isfinite(speed) else f"{'-':>9}"
        return (f"epoch {done:>{self.width}}/{self.epochs}   loss/char {loss / self.n_steps:6.3f}"
                f"   {speed_text} chars/s   {format_clock(time.perf_counter() - self.start)}")

    def update(self, done, loss, keep):
        line = self._line(done, loss)
        if keep:
            self.clear()
            self.out(line)
            self.mark_done, self.mark_train = done, self.train_seconds
            self.mark_time = time.perf_counter()
        elif self.live:
            pad = max(0, self._live_length - len(line))
            self.out("\r" + line + " " * pad, end="")
            self._live_length = len(line)

    def clear(self):
        if self.live and self._live_length:
            self.out("\r" + " " * self._live_length + "\r", end="")
            self._live_length = 0

    def overdue(self):
        return not self.live and time.perf_counter() - self.mark_time >= LOG_SECONDS


def _print_sample(model, primer, rng, out, temperature=1.0):
    text = primer + model.sample_text(SAMPLE_CHARS, start=primer, temperature=temperature,
                                      random_state=rng)
    for line in text.rstrip("\n").split("\n"):
        out(f"    | {line}".rstrip())


def _fit_was_interrupted(model, X, y, vocab):
    """model.fit; True when Ctrl-C stopped it (FastRNN.fit finishes the
    running block of epochs, then warns; the warning is ours to act on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y, vocab=vocab)
    interrupted = False
    for w in caught:
        if issubclass(w.category, RuntimeWarning) and "interrupted" in str(w.message):
            interrupted = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return interrupted


def _warm_up(cell, optimizer, ids, vocab, bptt, out):
    """Run the kernels once on a few characters, so that compiling them (on
    the first run; later runs load them from Numba's cache) is not counted
    in the speed and the user is told what the wait is."""
    start = time.perf_counter()
    note = SlowNote("(compiling the training kernels: the first run only, up to a minute; "
                    "later runs load them from Numba's cache)", out)
    with note:
        n = min(len(ids) - 1, bptt)
        model = FastRNN(n_hidden=2, cell=cell, optimizer=optimizer, epochs=1, bptt=bptt,
                        clip=CLIP, clip_mode="value", random_state=0)
        if _fit_was_interrupted(model, ids[:n], ids[1:n + 1], vocab):
            raise KeyboardInterrupt            # nothing learned yet: stop here
        model.sample(2, start=ids[:1], random_state=0)
    if note.fired:
        out(f"(ready after {time.perf_counter() - start:.1f} s)")


def train(args, out):
    # --------------------------------------------------------------- inputs
    if args.text_file is None:
        text, source = default_text(), DEFAULT_TEXT_NAME
    else:
        text, source = read_text(args.text_file), args.text_file
    if not text:
        raise CLIError(f"{args.text_file}: the text is empty")
    if len(text) < args.bptt + 1:
        raise CLIError(f"{source}: the text has {len(text)} characters; --bptt {args.bptt} needs "
                       f"at least {args.bptt + 1} (use a longer text or a smaller --bptt)")
    check_writable(args.out, "--out")
    if args.plot is not None:
        check_writable(args.plot, "--plot")
    plot_possible = args.plot is None or matplotlib_available()

    vocab = CharVocab(text)
    ids = vocab.encode(text)
    X, y = ids[:-1], ids[1:]                # predict the next character
    n_steps = len(X)
    lr = args.lr if args.lr is not None else DEFAULT_LEARNING_RATES[args.optimizer]
    k = len(vocab)
    epochs = args.epochs
    log_every = max(1, epochs // 10)
    sample_every = max(1, epochs // 5) if args.sample_every is None else args.sample_every

    out(f"Text: {source}, {len(text):,} characters, {k} distinct")
    out(f"Model: {CELL_NAMES[args.cell]}, {args.hidden} hidden units, "
        f"{_n_parameters(args.cell, k, args.hidden):,} parameters")
    out(f"Training: {args.optimizer}, learning rate {lr:g}, truncated BPTT over {args.bptt} "
        f"characters, gradient entries clipped to ±{CLIP:g}, seed {args.seed}")
    out(f"{epochs} epochs (one epoch = one pass over the text); Ctrl-C stops after the running "
        f"epoch and saves the model.")
    out(f"loss/char: the cross-entropy per character in nats (guessing uniformly: ln {k} = "
        f"{math.log(k):.2f}).")
    if not plot_possible:
        out(f"Note: {MATPLOTLIB_MISSING}. Training runs and saves anyway.")
    out("")
    _warm_up(args.cell, args.optimizer, ids, vocab, args.bptt, out)

    # ------------------------------------------------------------ training
    model = FastRNN(n_hidden=args.hidden, cell=args.cell, optimizer=args.optimizer,
                    learning_rate=lr, epochs=1, bptt=args.bptt, clip=CLIP, clip_mode="value",
                    random_state=args.seed, warm_start=True)
    rng = np.random.default_rng(args.seed)
    progress = _Progress(epochs, n_steps, out, live=stdout_is_terminal())
    done, per_epoch, diverged = 0, None, None
    with HeldInterrupt() as interrupt:
        try:
            while done < epochs and not interrupt.hit:
                due = [epochs, (done // log_every + 1) * log_every]
                if sample_every:
                    due.append((done // sample_every + 1) * sample_every)
                n = min(due) - done
                n = min(n, max(1, int(CALL_SECONDS / per_epoch))) if per_epoch else 1
                model.epochs = n
                start = time.perf_counter()
                try:
                    if _fit_was_interrupted(model, X, y, vocab):
                        interrupt.hit = True
                except FloatingPointError as exc:
                    diverged = exc
                elapsed = time.perf_counter() - start
                ran = len(getattr(model, "loss_curve_", ())) - done
                done += ran
                progress.train_seconds += elapsed
                if ran:
                    per_epoch = elapsed / ran
                if diverged is not None or not ran:
                    break
                sample_now = sample_every and (done % sample_every == 0 or done == epochs)
                keep = done % log_every == 0 or done == epochs or sample_now \
                    or interrupt.hit or progress.overdue()
                progress.update(done, model.loss_curve_[-1], keep)
                if sample_now and not interrupt.hit:
                    _print_sample(model, text[0], rng, out)
        except KeyboardInterrupt:
            # A second Ctrl-C: stop at once, but still keep what the model
            # holds (the parameters after the last completed fit call).
            interrupt.hit = True
            done = len(getattr(model, "loss_curve_", ()))
    progress.clear()

    # ------------------------------------------------------------- the end
    if diverged is not None:
        match = re.match(r"fit: (.*?) in epoch (\d+), update (\d+)", str(diverged))
        reason = match.group(1) if match else "the loss or parameters became non-finite"
        where = f"epoch {match.group(2)}, update {match.group(3)}" if match \
            else f"epoch {done + 1}"
        out(f"Training diverged in {where}: {reason}.")
        if done == 0:
            raise CLIError(f"training diverged in the first epoch ({reason}); nothing saved. "
                           f"Try a smaller --lr (was {lr:g})")
    elif interrupt.hit:
        out(f"Interrupted (Ctrl-C) after {done} of {epochs} epochs.")
    if done == 0:
        raise CLIError("stopped before the first epoch finished; nothing to save",
                       code=EXIT_INTERRUPTED if interrupt.hit else 1)
    # Saved as if one fit had run all the epochs (which gives the same parameters).
    model.set_params(epochs=done, warm_start=False)
    model.n_iter_ = done
    model.save(args.out)
    if diverged is not None:
        out(f"Saved the last finite parameters (after {done} epochs and part of the next) "
            f"to {args.out}")
    else:
        out(f"Saved the model after {done} epochs (loss/char "
            f"{model.loss_curve_[-1] / n_steps:.3f}) to {args.out}")
    out(f"Generate text with: fastrnn sample {_quote(args.out)}")
    if args.plot is not None:
        if not plot_possible:
            raise CLIError(MATPLOTLIB_MISSING)
        from fastrnn._plot import plot_loss_curve
        title = f"fastrnn train: {args.cell}, {args.hidden} hidden units, {args.optimizer}, " \
                f"lr {lr:g}"
        plot_loss_curve(args.plot, np.asarray(model.loss_curve_) / n_steps, title)
        out(f"Saved the loss curve to {args.plot}")
    if diverged is not None:
        raise CLIError(f"training diverged ({reason}); try a smaller --lr (was {lr:g})")
    return EXIT_INTERRUPTED if interrupt.hit else 0


def _quote(path):
    return path if path and all(ch.isalnum() or ch in "._-/+:@" for ch in path) else repr(path)


# ----------------------------------------------------------------- sample
def load_char_model(path):
    """A FastRNN with a character vocabulary, from a file written by
    ``fastrnn train`` (or ``FastRNN.save``); CLIError otherwise."""
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; expected a model file (.npz)")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"{path}: not a fastrnn model file (expected the .npz file that "
                       f"`fastrnn train` or FastRNN.save writes)")
    try:
        model = FastRNN.load(path)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise CLIError(str(exc) if str(exc).startswith(str(path))
                       else f"{path}: not a valid fastrnn model file ({exc})") from None
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
    text = model.sample_text(args.length, start=start, temperature=args.temperature,
                             random_state=rng)
    out(start + text)
    return 0


def _describe_chars(missing):
    listed = ", ".join(repr(ch) for ch in missing[:10]) + (", ..." if len(missing) > 10 else "")
    return f"the character {listed} is" if len(missing) == 1 else f"the characters {listed} are"
