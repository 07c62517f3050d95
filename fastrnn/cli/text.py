"""Texts for ``fastrnn train``: the default text (on every machine, no
download) and reading a user's text file."""
import codecs
import contextlib
import importlib
import inspect
import io
import os
import stat

from fastrnn.cli._util import CLIError

# Modules whose docstrings follow the Zen of Python in the default text:
# fastrnn's own documentation, in prose.
DEFAULT_TEXT_MODULES = ("fastrnn", "fastrnn.cli.demo", "fastrnn.functional", "fastrnn.estimator",
                        "fastrnn.cli.cases", "fastrnn._parallel")
DEFAULT_TEXT_NAME = "the default text (the Zen of Python and the docstrings of fastrnn's modules)"


def zen_of_python():
    """PEP 20, decoded from the standard library's ``this`` module (whose
    import prints it: that print is swallowed here)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13")


def default_text():
    """The Zen of Python, then the docstrings of a few fastrnn modules: a
    few thousand characters of English that every installation has. (Under
    ``python -OO`` docstrings are stripped and only the Zen remains.)"""
    parts = [zen_of_python().strip()]
    for name in DEFAULT_TEXT_MODULES:
        doc = inspect.getdoc(importlib.import_module(name))
        if doc:
            parts.append(doc.strip())
    return "\n\n".join(parts) + "\n"


# The largest text file ``fastrnn train`` reads: 256 MiB. Training a
# character model on more takes hours per epoch on a CPU, and the text is
# held several times over in memory (the bytes, the decoded str at up to 4
# bytes a character, the int codes), so a larger file is almost certainly a
# mistake (a disk image, a log, /dev/zero behind a symlink) and would end in
# a MemoryError or the machine swapping instead of a clear message.
MAX_TEXT_BYTES = 256 * 2**20
_READ_PIECE = 2**20


def _file_kind(mode):
    """What a file that is not a regular file is, for messages."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _check_text_file(path, info):
    if stat.S_ISDIR(info.st_mode):
        raise CLIError(f"{path}: is a directory; expected a text file")
    if not stat.S_ISREG(info.st_mode):
        raise CLIError(f"{path}: not a regular file but {_file_kind(info.st_mode)}; expected "
                       f"a text file")
    if info.st_size > MAX_TEXT_BYTES:
        raise CLIError(f"{path}: {info.st_size} bytes, more than fastrnn train reads "
                       f"({_bound()})")


def _bound():
    mib = f" = {MAX_TEXT_BYTES / 2**20:g} MiB" if MAX_TEXT_BYTES >= 2**20 else ""
    return f"at most {MAX_TEXT_BYTES} bytes{mib}"


def _read_bounded(file, path):
    """The file's bytes, refused as soon as they are more than MAX_TEXT_BYTES
    (a file that grew since it was checked, or a /proc file reporting size 0)."""
    data = bytearray()
    while True:
        piece = file.read(min(_READ_PIECE, MAX_TEXT_BYTES + 1 - len(data)))
        if not piece:
            return data
        data += piece
        if len(data) > MAX_TEXT_BYTES:
            raise CLIError(f"{path}: more than fastrnn train reads ({_bound()})")


def read_text(path):
    """The contents of a UTF-8 text file (a BOM is dropped, line ends
    normalised to \\n); a CLIError names the problem otherwise.

    Only a regular file of at most MAX_TEXT_BYTES is read: a FIFO, a device
    (/dev/zero) or a socket is refused before it is opened (and the file is
    opened non-blocking, so one swapped in meanwhile cannot hang the
    command either)."""
    try:
        _check_text_file(path, os.stat(path))
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags)
        with open(fd, "rb", buffering=0) as file:
            _check_text_file(path, os.fstat(fd))
            data = _read_bounded(file, path)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CLIError(f"{path}: is a directory; expected a text file") from None
    except PermissionError:
        raise CLIError(f"{path}: permission denied") from None
    except OSError as exc:
        raise CLIError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not a UTF-8 text file (byte {exc.start} cannot be decoded)") \
            from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
