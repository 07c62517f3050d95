"""Model files: reading them safely and writing them atomically.

A model file is a zip archive of ``.npy`` members, the layout ``numpy.savez``
writes (members stored, not compressed), so ``numpy.load`` can read it too:

* ``meta.npy``: a 0-d unicode array (``<U<n>``) holding a JSON object, with
  at least ``"format": "fastrnn-model"`` (the caller adds its own keys, a
  format ``"version"`` among them, and checks them);
* ``<name>.npy`` for each array: float64 (``<f8``), float32 (``<f4``) or int64 (``<i8``),
  C order.

This is the layout fastrnn has always written (format version 1), so files of
earlier releases read, and earlier releases read the files written here.

:func:`read_model` treats the file as hostile. It does not use ``numpy.load``
(which decompresses every member, unknown ones included, before anything can
be checked, and lets a corrupt file escape as NotImplementedError,
RuntimeError, zlib.error, RecursionError, MemoryError...). It reads the
table of contents, refuses anything it does not expect, and reads only the
members it expects, each only after its ``.npy`` header has been checked
against the shape and dtype the caller expects, and never more bytes than
that shape needs. Whatever the file claims, memory stays within the size of
the expected arrays (twice that for an array stored in Fortran order, which
is copied to C order) plus about 2 MiB, plus at most about 20 MiB for the
metadata (``MAX_META_CHARS`` characters, stored as UTF-32, then decoded and
parsed). The expected sizes come from ``expected(meta)``: the caller bounds
them (fastrnn._limits). Every malformed file gives one error,
:class:`ModelFileError` (a ValueError) whose message starts with the path; a
missing file gives FileNotFoundError.

:func:`write_model` writes atomically (a temporary file in the target's
directory, fsync, rename), so an interrupted save never leaves half a model
where a good one was; see its docstring for symlinks and permissions.
"""
import ast
import errno
import json
import math
import numbers
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

FORMAT = "fastrnn-model"

# Bounds on what a model file may contain. They are far beyond what fastrnn
# writes and keep a hostile file from costing more than a few MiB beyond the
# arrays the caller expects.
MAX_MEMBERS = 64                  # fastrnn writes 7
MAX_META_CHARS = 2**21            # the JSON text; a vocabulary of 2**17
                                  # characters, \\u-escaped, takes 1.5 Mi
MAX_META_DEPTH = 64               # nesting of JSON arrays/objects (fastrnn: 3)
_MAX_NPY_HEADER = 4096            # numpy writes 128 bytes for our arrays
_CHUNK = 2**18                    # bytes read from a member at a time
_MAX_READ = 2**20                 # the most zipfile may read from the file at
                                  # once (its table of contents, at most)

_META_MEMBER = "meta.npy"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_DTYPES = {np.dtype(np.float64): "f8", np.dtype(np.float32): "f4", np.dtype(np.int64): "i8"}
# Zip flag bits: 0x1 encrypted, 0x20 compressed patched data, 0x40 strong
# encryption; 0x2000 central directory encrypted.
_REFUSED_FLAGS = 0x1 | 0x20 | 0x40 | 0x2000
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}

# What a damaged or hostile file can make zipfile, zlib, ast and json raise.
# Each becomes a ModelFileError naming the file.
_CORRUPT = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
            OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, SyntaxError,
            RuntimeError, MemoryError, OverflowError)   # RuntimeError: RecursionError,
                                                      # NotImplementedError, "encrypted"


class ModelFileError(ValueError):
    """A file that is not a readable fastrnn model file: not a regular file,
    not a zip archive, damaged, or with members or metadata that do not fit
    the format. The message starts with the path and says what is wrong."""


def _kind(mode):
    """What a non-regular file is, for messages."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _display(path):
    return os.fsdecode(path)


# ================================================================== writing
def _to_json(value, where, depth):
    """``value`` with NumPy scalars, tuples and arrays made JSON natives;
    TypeError/ValueError naming ``where`` (the key path) otherwise."""
    if depth > MAX_META_DEPTH:
        raise ValueError(f"meta{where}: nested more than {MAX_META_DEPTH} levels deep")
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        # The exact value (np.float32(0.1) is 0.10000000149011612): the number
        # the model used, not a decimal it was typed as.
        result = float(value)
        if not math.isfinite(result):
            raise ValueError(f"meta{where}: {result} cannot be stored in a model file "
                             f"(JSON has no NaN or infinity)")
        return result
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"meta{where}: keys must be strings, got {key!r}")
            result[str(key)] = _to_json(item, f"{where}[{key!r}]", depth + 1)
        return result
    if isinstance(value, np.ndarray):
        value = value.tolist()
        if not isinstance(value, list):          # a 0-d array
            return _to_json(value, where, depth)
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise TypeError(f"meta{where}: a {type(value).__name__} cannot be stored in a model file "
                    f"(expected None, bool, int, float, str, list, tuple or dict)")


def _meta_text(meta):
    if not isinstance(meta, dict):
        raise TypeError(f"meta: expected a dict, got {type(meta).__name__}")
    meta = _to_json(meta, "", 1)
    if meta.setdefault("format", FORMAT) != FORMAT:
        raise ValueError(f"meta['format']: must be {FORMAT!r}, got {meta['format']!r}")
    text = json.dumps(meta, allow_nan=False)
    if len(text) > MAX_META_CHARS:
        raise ValueError(f"meta: {len(text)} characters as JSON, more than a model file "
                         f"holds ({MAX_META_CHARS})")
    return text


def _checked_arrays(arrays):
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays: expected a dict, got {type(arrays).__name__}")
    result = {}
    for name, value in arrays.items():
        if not (isinstance(name, str) and _NAME.fullmatch(name)) or name == "meta":
            raise ValueError(f"arrays: {name!r} is not a valid member name "
                             f"(letters, digits and _, not 'meta')")
        array = np.asarray(value)
        kind = _DTYPES.get(array.dtype.newbyteorder("="))
        if kind is None:
            raise TypeError(f"arrays[{name!r}]: expected float64, float32 or int64, got {array.dtype}")
        result[name] = np.ascontiguousarray(array.astype("<" + kind, copy=False))
    return result


def _write_zip(file, text, arrays):
    stamp = (1980, 1, 1, 0, 0, 0)     # a fixed date: the same model, the same bytes
    members = [("meta", np.array(text, dtype=f"<U{len(text)}"))] + list(arrays.items())
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        for name, array in members:
            info = zipfile.ZipInfo(name + ".npy", date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=array.nbytes >= 2**30) as member:
                npy_format.write_array(member, array, version=(1, 0), allow_pickle=False)


def _create_beside(target, mode):
    """A new, empty, uniquely named file in the directory of ``target``,
    created with ``mode`` (the umask and any default ACL applying): (fd, name)."""
    directory, base = os.path.split(target)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", directory)


def write_model(path, meta, arrays):
    """Write a model file: ``meta`` (a dict, stored as JSON in ``meta.npy``)
    and ``arrays`` ({name: float64, float32 or int64 array}, each ``<name>.npy``).
    Returns the path written.

    Meta: NumPy scalars become int/float/bool (floats keep their exact
    value), tuples and arrays become lists; ``"format": FORMAT`` is added if
    absent. NaN and infinities are refused (ValueError naming the key: JSON
    has no such numbers and the files must stay readable by any JSON reader);
    so are values of other types (TypeError naming the key) and meta larger
    or deeper than a model file may hold.

    Arrays: float64, float32 or int64 of any byte order and memory layout, written
    little-endian in C order; other dtypes are refused (TypeError).

    The file is written atomically: to a temporary file in the target's
    directory, flushed to disk, then renamed over the target; if anything
    fails (KeyboardInterrupt included) the temporary file is removed and an
    existing target is left as it was.

    * If ``path`` is a symlink, its target is written and the link kept; the
      returned path is then the resolved target (``os.path.realpath``).
      A dangling link creates its target.
    * A new file gets the permissions any program's new files get: 0o666
      less the umask (or the directory's default ACL). An existing file
      keeps its permission bits (rwx for user, group, others; setuid, setgid
      and sticky bits are dropped); as with any write-then-rename, its owner
      becomes the writer and hard links to it are broken. An existing file
      that the caller may not write is refused (PermissionError), as opening
      it for writing would be.
    * An existing path that is not a regular file (a directory, a FIFO,
      /dev/null...) is refused with :class:`ModelFileError` rather than
      replaced.
    """
    path = os.fspath(path)
    text = _meta_text(meta)
    arrays = _checked_arrays(arrays)
    target = os.path.realpath(path)
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise ModelFileError(f"{_display(path)}: is {_kind(existing.st_mode)}; a model is "
                                 f"written as a regular file")
        if not os.access(target, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
            raise PermissionError(errno.EACCES, "permission denied (the file is not writable)",
                                  path)
    # Created private when it replaces a file whose bits are set at the end;
    # a new file is created with its final mode, which the umask decides.
    fd, tmp = _create_beside(target, 0o600 if existing is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            _write_zip(file, text, arrays)
            file.flush()
            if existing is not None:
                os.fchmod(file.fileno(), stat.S_IMODE(existing.st_mode) & 0o777)
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(os.path.dirname(target))
    return target if os.path.islink(path) else path


def _fsync_directory(directory):
    """Make the rename durable (best effort: not every system can)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ================================================================== reading
class _CappedFile:
    """The open model file as zipfile sees it: no single read may exceed
    _MAX_READ bytes, so no size written in the file (its table of contents'
    size) can make zipfile allocate more than that."""

    def __init__(self, file, size, path):
        self._file, self._size, self._path = file, size, path

    def read(self, n=-1):
        if n is None or n < 0:
            n = max(self._size - self._file.tell(), 0)
        if n > _MAX_READ:
            raise ModelFileError(f"{_display(self._path)}: not a fastrnn model file (a zip "
                                 f"structure of {n} bytes; a model file's are small)")
        return self._file.read(n)

    def seek(self, offset, whence=0):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def seekable(self):
        return True


def _open_regular(path):
    """The file opened for reading, if it is a regular file; never blocks
    (a FIFO is refused before it is opened, and opened non-blocking should
    it replace the file in between)."""
    info = os.stat(path)                  # FileNotFoundError for a missing file
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(f"{_display(path)}: is {_kind(info.st_mode)}, not a fastrnn model "
                             f"file (a model file is a regular file)")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(f"{_display(path)}: is {_kind(info.st_mode)}, not a fastrnn "
                                 f"model file (a model file is a regular file)")
        return open(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_exact(member, n, what):
    data = member.read(n)
    if len(data) != n:
        raise ModelFileError(f"{what}: ends early")
    return data


def _npy_header(member, what):
    """(descr, shape, fortran_order, header length) of a .npy stream,
    checked; the stream is left at the first data byte."""
    magic = _read_exact(member, 8, what)
    if magic[:6] != b"\x93NUMPY":
        raise ModelFileError(f"{what}: not a .npy array")
    version = (magic[6], magic[7])
    if version == (1, 0):
        (length,) = struct.unpack("<H", _read_exact(member, 2, what))
    elif version == (2, 0):
        (length,) = struct.unpack("<I", _read_exact(member, 4, what))
    else:
        raise ModelFileError(f"{what}: .npy format version {version[0]}.{version[1]} "
                             f"(expected 1.0 or 2.0)")
    if length > _MAX_NPY_HEADER:
        raise ModelFileError(f"{what}: a .npy header of {length} bytes (at most "
                             f"{_MAX_NPY_HEADER})")
    header = ast.literal_eval(_read_exact(member, length, what).decode("latin1"))
    if not (isinstance(header, dict) and header.keys() == {"descr", "fortran_order", "shape"}):
        raise ModelFileError(f"{what}: not a valid .npy header")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not (isinstance(shape, tuple)
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ModelFileError(f"{what}: not a valid .npy shape ({shape!r})")
    if not isinstance(fortran, bool):
        raise ModelFileError(f"{what}: not a valid .npy header (fortran_order {fortran!r})")
    if not isinstance(descr, str):
        raise ModelFileError(f"{what}: dtype {descr!r} (expected float64, float32 or int64)")
    return descr, shape, fortran, len(magic) + (2 if version == (1, 0) else 4) + length


def _check_member_info(info, size, where):
    if info.flag_bits & _REFUSED_FLAGS:
        raise ModelFileError(f"{where}: encrypted (a model file's members are not)")
    if info.compress_type not in _METHODS:
        raise ModelFileError(f"{where}: compression method {info.compress_type} (expected "
                             f"stored or deflated)")
    if info.header_offset + info.compress_size > size:
        raise ModelFileError(f"{where}: claims {info.compress_size} bytes at offset "
                             f"{info.header_offset}, beyond the end of the file ({size} bytes)")


def _check_declared_size(info, most, where):
    """Refuse a member whose declared size is beyond what it may hold, before
    a byte of it is decompressed."""
    if info.file_size > most:
        raise ModelFileError(f"{where}: declares {info.file_size} bytes, more than the "
                             f"{most} it may hold")


def _check_data_size(info, header_length, nbytes, where):
    if info.file_size != header_length + nbytes:
        raise ModelFileError(f"{where}: {info.file_size} bytes, expected {header_length + nbytes}"
                             f" for its .npy header and data")


def _read_into(member, array, where):
    """Fill ``array`` from the member stream, a bounded piece at a time."""
    flat = array.reshape(-1).view(np.uint8)
    done = 0
    while done < flat.size:
        piece = member.read(min(_CHUNK, flat.size - done))
        if not piece:
            raise ModelFileError(f"{where}: ends early")
        flat[done:done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        done += len(piece)


_JSON_STRING = re.compile(r'"[^"]*(?:"|\Z)')      # always matches: linear, no backtracking
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _json_depth(text):
    """The deepest nesting of arrays/objects in a JSON text, outside strings:
    linear time, memory a few times the text's, no recursion. (Escaped
    backslashes, then escaped quotes, are dropped first, so that every
    remaining quote opens or closes a string.)"""
    text = text.replace("\\\\", "").replace('\\"', "")
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    # '[' 0x5B and '{' 0x7B have bit 1 set, ']' 0x5D and '}' 0x7D do not.
    steps = ((codes >> 1) & 1).astype(np.int8) * 2 - 1
    return int(np.cumsum(steps, dtype=np.int32).max())


def _no_constants(name):
    raise ValueError(f"{name} is not a number a model file holds")


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _read_meta(archive, info, path):
    where = f"{_display(path)}: {_META_MEMBER}"
    _check_declared_size(info, _MAX_NPY_HEADER + 12 + 4 * MAX_META_CHARS, where)
    with archive.open(info) as member:
        descr, shape, _, header_length = _npy_header(member, where)
        match = re.fullmatch(r"([<>])U([0-9]{1,8})", descr)
        if not match or shape != ():
            raise ModelFileError(f"{where}: a {descr!r} array of shape {shape} (expected a "
                                 f"0-d unicode array holding JSON)")
        n_chars = int(match.group(2))
        if n_chars > MAX_META_CHARS:
            raise ModelFileError(f"{where}: {n_chars} characters, more than a model file's "
                                 f"metadata may have ({MAX_META_CHARS})")
        _check_data_size(info, header_length, 4 * n_chars, where)
        data = np.empty(4 * n_chars, dtype=np.uint8)
        _read_into(member, data, where)
    codec = "utf-32-le" if match.group(1) == "<" else "utf-32-be"
    text = str(data, codec).rstrip("\x00")
    del data
    if _json_depth(text) > MAX_META_DEPTH:
        raise ModelFileError(f"{where}: JSON nested more than {MAX_META_DEPTH} levels deep")
    try:
        meta = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{where}: a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{_display(path)}: not a fastrnn model file (format "
                             f"{meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def _normalise_spec(name, spec):
    """(shape or None, max_length or None, dtype) from one entry of what
    ``expected`` returned; TypeError for a malformed entry (a caller's bug,
    not the file's)."""
    try:
        shape, dtype = spec
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"expected()[{name!r}]: expected (shape, dtype), got {spec!r}") from None
    if dtype not in _DTYPES:
        raise TypeError(f"expected()[{name!r}]: dtype {dtype} (float64, float32 or int64 only)")
    if not (isinstance(name, str) and _NAME.fullmatch(name)) or name == "meta":
        raise TypeError(f"expected(): {name!r} is not a valid member name")

    def count(n):
        return isinstance(n, numbers.Integral) and not isinstance(n, (bool, np.bool_)) and n >= 0

    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == "1d" and count(shape[1]):
        return None, int(shape[1]), dtype
    if isinstance(shape, tuple) and all(count(n) for n in shape):
        return tuple(int(n) for n in shape), None, dtype
    raise TypeError(f"expected()[{name!r}]: shape {shape!r} (expected a tuple of sizes or "
                    f"('1d', max_length))")


def _read_array(archive, info, path, name, shape, max_length, dtype):
    where = f"{_display(path)}: {name}.npy"
    itemsize = dtype.itemsize
    most = itemsize * (max_length if shape is None else math.prod(shape))
    _check_declared_size(info, _MAX_NPY_HEADER + 12 + most, where)
    with archive.open(info) as member:
        descr, found, fortran, header_length = _npy_header(member, where)
        kind = _DTYPES[dtype]
        if descr not in ("<" + kind, ">" + kind):
            raise ModelFileError(f"{where}: dtype {descr!r} (expected {dtype}, '<{kind}')")
        if shape is None:
            if len(found) != 1 or found[0] > max_length:
                raise ModelFileError(f"{where}: shape {found} (expected 1-D, at most "
                                     f"{max_length} long)")
        elif found != shape:
            raise ModelFileError(f"{where}: shape {found}, expected {shape}")
        _check_data_size(info, header_length, itemsize * math.prod(found), where)
        # np.savez writes a Fortran-ordered array (one that was F- but not
        # C-contiguous) as its transpose's bytes: read those, then copy to C order.
        array = np.empty(found[::-1] if fortran else found, dtype=descr)
        _read_into(member, array, where)
    if fortran:
        array = np.ascontiguousarray(array.T)
    if not array.dtype.isnative:
        array = array.byteswap(inplace=True).view(array.dtype.newbyteorder())
    return array


def read_model(path, expected):
    """Read a model file written by :func:`write_model` (or by fastrnn's
    earlier ``np.savez`` writer): ``(meta, {name: array})``.

    ``expected(meta)`` is called with the parsed metadata (a dict whose
    ``"format"`` is FORMAT; other keys, ``"version"`` among them, are the
    caller's to check) and returns the array members the file must hold,
    ``{name: (shape, dtype)}``: ``shape`` a tuple of sizes, or
    ``("1d", max_length)`` for a 1-D array of any length up to
    ``max_length``; ``dtype`` float64, float32 or int64. It may raise ValueError,
    TypeError, KeyError, IndexError or AttributeError for metadata it does
    not accept: that becomes a ModelFileError naming the file (other
    exceptions from it pass through unchanged). A malformed return value is
    the caller's bug: TypeError.

    The file must hold exactly ``meta.npy`` and those members, each exactly
    once, stored or deflated, not encrypted, each array with exactly that
    dtype (little-endian, or big-endian as numpy writes on such machines)
    and that shape (in C order, or Fortran order as np.savez writes an
    F-contiguous array; such an array is copied to C order once read). The
    arrays are returned C-contiguous, in native byte order. No member is
    decompressed before its declared size has been checked, and none beyond
    the size its expected shape needs.

    Raises FileNotFoundError if ``path`` does not exist, and
    :class:`ModelFileError` (message ``"<path>: <what is wrong>"``) for
    anything else: a directory, FIFO or device (refused without blocking),
    a file that cannot be opened or read, is not a zip archive, is damaged,
    or does not fit the format.
    """
    path = os.fspath(path)
    shown = _display(path)
    try:
        file, size = _open_regular(path)
    except (FileNotFoundError, ModelFileError):
        raise
    except OSError as exc:
        raise ModelFileError(f"{shown}: cannot read it ({exc.strerror or exc})") from None
    with file:
        archive = _guarded(shown, zipfile.ZipFile, _CappedFile(file, size, path))
        with archive:
            members, meta = _guarded(shown, _read_contents, archive, size, path)
            try:
                wanted = expected(meta)
            except ModelFileError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                raise ModelFileError(f"{shown}: not a valid fastrnn model file ({exc})") \
                    from None
            specs = _normalise_specs(wanted)
            for name in members:
                if name != _META_MEMBER and name[:-4] not in specs:
                    raise ModelFileError(f"{shown}: an unknown member {name!r}")
            for name in specs:
                if name + ".npy" not in members:
                    raise ModelFileError(f"{shown}: the member '{name}.npy' is missing")
            arrays = {name: _guarded(shown, _read_array, archive, members[name + ".npy"], path,
                                     name, *spec)
                      for name, spec in specs.items()}
    return meta, arrays


def _guarded(shown, function, *args):
    """``function(*args)``, whatever a damaged file makes it raise turned
    into a ModelFileError naming the file."""
    try:
        return function(*args)
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{shown}: not a fastrnn model file, or a damaged one (a model "
                             f"file is a zip archive: {exc})") from None
    except _CORRUPT as exc:
        raise ModelFileError(f"{shown}: damaged, not a readable fastrnn model file "
                             f"({type(exc).__name__}: {exc})") from None


def _read_contents(archive, size, path):
    """The members ({name: ZipInfo}), checked, and the parsed metadata."""
    shown = _display(path)
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{shown}: {len(infos)} members (a model file has at most "
                             f"{MAX_MEMBERS})")
    members = {}
    for info in infos:
        name = info.filename
        if name in members:
            raise ModelFileError(f"{shown}: the member {name!r} appears twice")
        if not (name.endswith(".npy") and _NAME.fullmatch(name[:-4])):
            raise ModelFileError(f"{shown}: an unknown member {name!r} (not a fastrnn model "
                                 f"file)")
        _check_member_info(info, size, f"{shown}: {name}")
        members[name] = info
    if _META_MEMBER not in members:
        raise ModelFileError(f"{shown}: not a fastrnn model file (no {_META_MEMBER} member)")
    return members, _read_meta(archive, members[_META_MEMBER], path)


def _normalise_specs(wanted):
    if not isinstance(wanted, dict):
        raise TypeError(f"expected() must return a dict, got {type(wanted).__name__}")
    return {name: _normalise_spec(name, spec) for name, spec in wanted.items()}
