"""fastrnn.cli.text.read_text, the reader of ``fastrnn train TEXT_FILE``: only
regular files of at most MAX_TEXT_BYTES, refused before they are read (a
FIFO used to block forever, /dev/zero to read until MemoryError), with a
CLIError naming the path; otherwise as before (BOM dropped, line ends
normalised, clear errors)."""
import os

import pytest

from _blocking import call_with_timeout

from fastrnn.cli import text as _text
from fastrnn.cli._util import CLIError
from fastrnn.cli.text import read_text


def test_utf8_with_bom_and_crlf_reads_as_before(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("\ufeffHéllo\r\nwörld\rend\n".encode("utf-8"))
    assert read_text(path) == "Héllo\nwörld\nend\n"
    assert read_text(str(path)) == "Héllo\nwörld\nend\n"


def test_empty_file_reads(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert read_text(path) == ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "text.txt"
    os.mkfifo(fifo)

    def unblock():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    error = call_with_timeout(lambda: read_text(fifo), 10, unblock)
    assert isinstance(error, CLIError), error
    assert str(error) == f"{fifo}: not a regular file but a FIFO; expected a text file"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_refused():
    error = call_with_timeout(lambda: read_text("/dev/zero"), 10)
    assert isinstance(error, CLIError), error
    assert str(error) == ("/dev/zero: not a regular file but a character device; expected a "
                          "text file")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_symlink_to_dev_zero_refused(tmp_path):
    link = tmp_path / "text.txt"
    link.symlink_to("/dev/zero")
    error = call_with_timeout(lambda: read_text(link), 10)
    assert isinstance(error, CLIError) and "character device" in str(error)


def test_file_over_the_bound_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_text, "MAX_TEXT_BYTES", 100)
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * 100)
    assert read_text(path) == "a" * 100
    path.write_bytes(b"a" * 101)
    with pytest.raises(CLIError) as info:
        read_text(path)
    assert str(info.value) == (f"{path}: 101 bytes, more than fastrnn train reads "
                               f"(at most 100 bytes)")


def test_bound_message_in_mib(tmp_path, monkeypatch):
    monkeypatch.setattr(_text, "MAX_TEXT_BYTES", 2**20)
    path = tmp_path / "big.txt"
    with open(path, "wb") as file:
        file.truncate(2**20 + 1)               # sparse: nothing written
    with pytest.raises(CLIError, match=r"1048577 bytes, .*at most 1048576 bytes = 1 MiB"):
        read_text(path)


def test_the_bound_is_256_mib():
    assert _text.MAX_TEXT_BYTES == 256 * 2**20


@pytest.mark.skipif(not os.path.isfile("/proc/self/status"), reason="no /proc")
def test_file_reporting_no_size_is_still_bounded(monkeypatch):
    """Files under /proc report size 0 whatever they hold: the bound holds
    on the bytes read, not only on the size reported."""
    assert os.stat("/proc/self/status").st_size == 0
    assert "Pid:" in read_text("/proc/self/status")
    monkeypatch.setattr(_text, "MAX_TEXT_BYTES", 10)
    with pytest.raises(CLIError, match=r"/proc/self/status: more than fastrnn train reads"):
        read_text("/proc/self/status")


def test_missing_file_directory_and_bad_utf8_as_before(tmp_path):
    with pytest.raises(CLIError, match=r"missing\.txt: no such file$"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(CLIError, match=r": is a directory; expected a text file$"):
        read_text(tmp_path)
    path = tmp_path / "binary.dat"
    path.write_bytes(b"ok\xff\xfe")
    with pytest.raises(CLIError, match=r"binary\.dat: not a UTF-8 text file \(byte 2 "):
        read_text(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"x")
    os.chmod(path, 0)
    with pytest.raises(CLIError, match="permission denied"):
        read_text(path)
