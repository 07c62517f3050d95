"""Texts for ``fastrnn train``: the default text (on every machine, no
download) and reading a user's text file."""
import codecs
import contextlib
import importlib
import inspect
import io
from pathlib import Path

from fastrnn._cliutil import CLIError

# Modules whose docstrings follow the Zen of Python in the default text:
# fastrnn's own documentation, in prose.
DEFAULT_TEXT_MODULES = ("fastrnn", "fastrnn.demo", "fastrnn.functional", "fastrnn.estimator",
                        "fastrnn.cases", "fastrnn._parallel")
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


def read_text(path):
    """The contents of a UTF-8 text file (a BOM is dropped, line ends
    normalised to \\n); a CLIError names the problem otherwise."""
    try:
        data = Path(path).read_bytes()
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
