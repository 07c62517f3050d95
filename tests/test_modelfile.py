"""fastrnn._modelfile: model files read safely (one error, ModelFileError,
for every malformed file; bounded memory whatever the file claims; no
blocking on FIFOs) and written atomically (symlinks followed, permissions
like any other file writer, nothing left behind by an interrupted save)."""
import inspect
import io
import json
import os
import stat
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from _blocking import call_with_timeout
from numpy.lib import format as npy_format

from fastrnn import _modelfile
from fastrnn._modelfile import FORMAT, ModelFileError, read_model, write_model

MiB = 2**20
# Memory a read may take beyond what the test itself holds: the expected
# arrays are a few hundred bytes, so anything near this is a regression.
BOUND = 200 * MiB
MAX_LOSS_LENGTH = 10**6


def make_arrays(k=3, d=4, o=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"W_x": rng.normal(size=(k, d)), "W_h": rng.normal(size=(d, d)),
            "b_h": rng.normal(size=d), "W_y": rng.normal(size=(d, o)),
            "b_y": rng.normal(size=o), "loss_curve": np.array([3.5, 2.25, 1.125])}


META = {"format": FORMAT, "version": 1, "n_inputs": 3, "n_hidden": 4, "n_outputs": 3}


def expected(meta):
    """What the estimator's expected() looks like: sizes from the metadata."""
    k, d, o = meta["n_inputs"], meta["n_hidden"], meta["n_outputs"]
    for value in (k, d, o):
        if not isinstance(value, int) or not 0 < value < 1000:
            raise ValueError(f"bad size {value!r}")
    f8 = np.float64
    return {"W_x": ((k, d), f8), "W_h": ((d, d), f8), "b_h": ((d,), f8), "W_y": ((d, o), f8),
            "b_y": ((o,), f8), "loss_curve": (("1d", MAX_LOSS_LENGTH), f8)}


def assert_same(result, meta, arrays):
    got_meta, got_arrays = result
    assert got_meta == meta
    assert got_arrays.keys() == arrays.keys()
    for name, array in arrays.items():
        assert got_arrays[name].dtype == np.float64
        assert got_arrays[name].flags.c_contiguous
        np.testing.assert_array_equal(got_arrays[name], array)


# ------------------------------------------------------- crafting archives
def npy_bytes(array):
    buffer = io.BytesIO()
    npy_format.write_array(buffer, np.asarray(array), version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def npy_header(descr, shape, fortran=False):
    """A .npy 1.0 header declaring anything at all."""
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def meta_bytes(meta_or_text):
    text = meta_or_text if isinstance(meta_or_text, str) else json.dumps(meta_or_text)
    return npy_bytes(np.array(text))


def stored(name, payload):
    """A member stored as it is, with its true CRC and size."""
    return dict(name=name, data=payload, method=0, crc=zlib.crc32(payload), size=len(payload),
                flags=0)


def model_members(meta=META, arrays=None):
    arrays = make_arrays() if arrays is None else arrays
    return ([stored("meta.npy", meta_bytes(meta))]
            + [stored(name + ".npy", npy_bytes(array)) for name, array in arrays.items()])


def build_zip(path, members):
    """A zip archive written by hand, so that it can say anything: each
    member's name, data as stored, method, flags, CRC and declared size."""
    body, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode()
        offset = len(body)
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, m["flags"], m["method"], 0,
                            0x21, m["crc"], len(m["data"]), m["size"], len(name), 0)
        body += name + m["data"]
        central += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, m.get("version", 20), 0,
                               m["flags"], m["method"], 0, 0x21, m["crc"], len(m["data"]),
                               m["size"], len(name), 0, 0, 0, 0, 0, offset)
        central += name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), len(body), 0)
    with open(path, "wb") as file:
        file.write(body + central + end)
    return path


def zeros_deflated(mib):
    """A raw deflate stream (not finished) of ``mib`` MiB of zeros, built in
    milliseconds: after a full flush, every MiB of zeros compresses to the
    same bytes, so one block is repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mib


def deflated(payload, then_zero_mib=0):
    """``payload`` deflated, followed in the same stream by that many MiB of
    zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(payload) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + zeros_deflated(then_zero_mib) + b"\x03\x00"    # \x03\x00: final empty block


def traced_peak(function):
    """(result or exception, peak bytes allocated above the start) of a call."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        try:
            outcome = function()
        except Exception as exc:       # noqa: BLE001 - returned to the test to inspect
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def release_fifo(path):
    """Open a FIFO's write end, which releases a reader blocked opening it."""
    def unblock():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    return unblock


@pytest.fixture
def model(tmp_path):
    """A genuine small model file (written by write_model) and its contents."""
    arrays = make_arrays()
    path = write_model(tmp_path / "model.npz", META, arrays)
    return path, META, arrays


# ============================================================= round trips
def test_round_trip_with_numpy_scalars_and_tuples(tmp_path):
    arrays = make_arrays()
    meta = {"format": FORMAT, "version": 1, "n_inputs": np.int64(3), "n_hidden": np.int32(4),
            "n_outputs": 3,
            "hyperparameters": {"learning_rate": np.float32(0.1), "clip": np.float16(0.5),
                                "betas": (0.9, np.float64(0.999)), "shuffle": np.bool_(False),
                                "sizes": np.array([1, 2]), "name": np.str_("rnn"),
                                "random_state": None}}
    path = write_model(tmp_path / "m.npz", meta, arrays)
    got_meta, got_arrays = read_model(path, expected)
    assert got_meta == {"format": FORMAT, "version": 1, "n_inputs": 3, "n_hidden": 4,
                        "n_outputs": 3,
                        "hyperparameters": {"learning_rate": float(np.float32(0.1)), "clip": 0.5,
                                            "betas": [0.9, 0.999], "shuffle": False,
                                            "sizes": [1, 2], "name": "rnn",
                                            "random_state": None}}
    hyper = got_meta["hyperparameters"]
    assert type(hyper["shuffle"]) is bool and type(got_meta["n_inputs"]) is int
    assert_same((got_meta, got_arrays), got_meta, arrays)


def test_format_is_added_and_int64_arrays_round_trip(tmp_path):
    arrays = {"codes": np.arange(5, dtype=np.int64)}
    path = write_model(tmp_path / "m.npz", {"version": 2}, arrays)
    meta, got = read_model(path, lambda meta: {"codes": ((5,), np.int64)})
    assert meta == {"version": 2, "format": FORMAT}
    assert got["codes"].dtype == np.int64 and list(got["codes"]) == [0, 1, 2, 3, 4]


def test_reads_files_of_the_released_version(tmp_path):
    """Version 1 files were written by np.savez with the metadata as a 0-d
    unicode array, and F-contiguous arrays in Fortran order."""
    arrays = make_arrays()
    saved = dict(arrays, W_h=np.asfortranarray(arrays["W_h"]))
    saved["meta"] = np.array(json.dumps(META))
    path = tmp_path / "old.npz"
    with open(path, "wb") as file:
        np.savez(file, **saved)
    assert_same(read_model(path, expected), META, arrays)


def test_reads_compressed_and_big_endian_files(tmp_path):
    arrays = make_arrays()
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, meta=np.array(json.dumps(META)), **arrays)
    assert_same(read_model(compressed, expected), META, arrays)
    big = tmp_path / "big.npz"
    text = json.dumps(META)
    np.savez(big, meta=np.array(text).astype(f">U{len(text)}"),
             **{name: array.astype(">f8") for name, array in arrays.items()})
    meta, got = read_model(big, expected)
    assert all(array.dtype.isnative for array in got.values())
    assert_same((meta, got), META, arrays)


def test_large_meta_round_trips(tmp_path):
    """Metadata near its bound (a large vocabulary) is read in pieces."""
    chars = [*range(0x4E00, 0x4E00 + 20_000), *range(0x20000, 0x20000 + 100_000)]
    meta = dict(META, vocab="".join(map(chr, chars)))     # 1.32 Mi characters as JSON
    path = write_model(tmp_path / "m.npz", meta, make_arrays())
    assert read_model(path, expected)[0] == meta


def test_written_files_read_with_numpy_load_and_are_reproducible(tmp_path):
    arrays = make_arrays()
    first = write_model(tmp_path / "a.npz", META, arrays)
    second = write_model(tmp_path / "b.npz", META, arrays)
    assert Path(first).read_bytes() == Path(second).read_bytes()
    with np.load(first, allow_pickle=False) as data:
        assert json.loads(str(data["meta"])) == META
        np.testing.assert_array_equal(data["W_x"], arrays["W_x"])


# ========================================================== refused on save
@pytest.mark.parametrize("value", [float("nan"), float("inf"), np.float32("-inf")])
def test_non_finite_meta_refused_naming_the_key(tmp_path, value):
    meta = {"format": FORMAT, "hyperparameters": {"lr": 0.1, "clip": value}}
    with pytest.raises(ValueError, match=r"meta\['hyperparameters'\]\['clip'\]"):
        write_model(tmp_path / "m.npz", meta, make_arrays())
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("meta, error", [
    ({"a": 1j}, TypeError), ({"a": b"bytes"}, TypeError), ({1: 2}, TypeError),
    ([("format", FORMAT)], TypeError), ({"format": "other"}, ValueError)])
def test_unstorable_meta_refused(tmp_path, meta, error):
    with pytest.raises(error):
        write_model(tmp_path / "m.npz", meta, make_arrays())


def test_self_referencing_meta_refused(tmp_path):
    meta = {"format": FORMAT}
    meta["self"] = meta
    with pytest.raises(ValueError, match="nested"):
        write_model(tmp_path / "m.npz", meta, {})


@pytest.mark.parametrize("arrays", [{"W_x": np.zeros(3, np.float16)}, {"W_x": np.zeros(3, bool)},
                                    {"meta": np.zeros(3)}, {"a/b": np.zeros(3)}])
def test_unstorable_arrays_refused(tmp_path, arrays):
    with pytest.raises((TypeError, ValueError)):
        write_model(tmp_path / "m.npz", META, arrays)


def test_meta_too_large_refused_on_save_and_on_read(tmp_path, monkeypatch):
    path = write_model(tmp_path / "m.npz", dict(META, note="x" * 500), make_arrays())
    monkeypatch.setattr(_modelfile, "MAX_META_CHARS", 200)
    with pytest.raises(ValueError, match="characters"):
        write_model(tmp_path / "n.npz", dict(META, note="x" * 500), make_arrays())
    with pytest.raises(ModelFileError, match="characters, more than"):
        read_model(path, expected)


# ======================================================= malformed files
def check_refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        read_model(path, expected)
    assert str(info.value).startswith(f"{path}: ")


def test_duplicate_member_refused(tmp_path):
    members = model_members()
    members.append(stored("W_x.npy", npy_bytes(np.ones((3, 4)))))
    check_refused(build_zip(tmp_path / "m.npz", members), "'W_x.npy' appears twice")


@pytest.mark.parametrize("name", ["junk.npy", "notes.txt", "../W_x.npy", "dir/"])
def test_unknown_member_refused(tmp_path, name):
    members = model_members() + [stored(name, npy_bytes(np.zeros(2)))]
    check_refused(build_zip(tmp_path / "m.npz", members), "unknown member")


def test_missing_member_refused(tmp_path):
    members = [m for m in model_members() if m["name"] != "b_y.npy"]
    check_refused(build_zip(tmp_path / "m.npz", members), "'b_y.npy' is missing")


@pytest.mark.parametrize("flag", [0x1, 0x40])
def test_encrypted_member_refused(tmp_path, flag):
    members = model_members()
    members[1]["flags"] = flag
    check_refused(build_zip(tmp_path / "m.npz", members), "W_x.npy: encrypted")


@pytest.mark.parametrize("method", [1, 12, 14, 99])
def test_unsupported_compression_refused(tmp_path, method):
    members = model_members()
    members[2]["method"] = method
    check_refused(build_zip(tmp_path / "m.npz", members), "W_h.npy: compression method")


def test_unsupported_zip_version_refused(tmp_path):
    """zipfile raises NotImplementedError for a version it cannot extract."""
    members = model_members()
    members[3]["version"] = 255
    check_refused(build_zip(tmp_path / "m.npz", members), "NotImplementedError: zip file version")


def test_damaged_deflate_stream_refused(tmp_path):
    members = model_members()
    payload = members[1]["data"]
    stream = bytearray(deflated(payload))
    stream[0] = 0xFF                  # block type 3, which does not exist: zlib.error
    members[1].update(data=bytes(stream), method=8)
    check_refused(build_zip(tmp_path / "m.npz", members),
                  r"damaged.*\(error: .*invalid block type")


def test_deeply_nested_meta_refused(tmp_path):
    text = '{"format": "fastrnn-model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    members = model_members()
    members[0] = stored("meta.npy", meta_bytes(text))
    check_refused(build_zip(tmp_path / "m.npz", members), "nested more than")


@pytest.mark.parametrize("text, depth", [
    ("{}", 1), ('{"a": [[1], {"b": []}]}', 4), ('{"a": "[[[{{{"}', 1),
    ('{"a": "x\\\\", "b": [[1]]}', 3), ('{"a": "\\"[[[", "b": []}', 2), ('"[', 0),
    ("[" * 1000, 1000)])
def test_json_depth(text, depth):
    assert _modelfile._json_depth(text) == depth
    if text.startswith("{"):
        json.loads(text)                        # these cases are valid JSON


def test_meta_full_of_escapes_parses_in_bounded_memory(tmp_path):
    """2 Mi characters of escaped quotes: a backtracking scanner would keep
    a stack entry per escape (hundreds of MiB)."""
    text = '{"format": "fastrnn-model", "note": "' + '\\"' * 1_000_000 + '"}'
    members = model_members()
    members[0] = stored("meta.npy", meta_bytes(text))
    path = build_zip(tmp_path / "m.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError) and "n_inputs" in str(outcome)
    assert peak < 40 * MiB, peak


@pytest.mark.parametrize("text, match", [
    ("[1, 2]", "expected an object"), ('"fastrnn-model"', "expected an object"),
    ('{"format": "other"}', "not a fastrnn model file"), ("{}", "not a fastrnn model file"),
    ('{"format": "fastrnn-model", "n_inputs": NaN}', "not valid JSON"),
    ('{"format": "fastrnn-model", "format": "fastrnn-model"}', "twice"),
    ('{"format": "fastrnn-model"', "not valid JSON"),
    ('{"format": "fastrnn-model", "n_inputs": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"format": "fastrnn-model", "n_inputs": "3"}', "not a valid fastrnn model file"),
    ('{"format": "fastrnn-model", "n_inputs": 3}', "not a valid fastrnn model file")])
def test_bad_meta_refused(tmp_path, text, match):
    members = model_members()
    members[0] = stored("meta.npy", meta_bytes(text))
    check_refused(build_zip(tmp_path / "m.npz", members), match)


@pytest.mark.parametrize("payload, match", [
    (npy_header("<U99999999", ()), "characters, more than"),
    (npy_header("<f8", ()) + bytes(8), "expected a 0-d unicode array"),
    (npy_header("<U4", (2,)) + bytes(32), "expected a 0-d unicode array"),
    (npy_header("O", ()) + bytes(8), "expected a 0-d unicode array"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{", "header of 2147483648 bytes"),
    (b"\x93NUMPY\x03\x00" + struct.pack("<I", 10) + b"{}", "format version 3.0"),
    (b"not an npy file at all", "not a .npy array")],
    ids=lambda v: v if isinstance(v, str) else "")
def test_bad_meta_member_refused(tmp_path, payload, match):
    members = model_members()
    members[0] = stored("meta.npy", payload)
    check_refused(build_zip(tmp_path / "m.npz", members), match)


@pytest.mark.parametrize("payload, match", [
    (npy_header("<f8", (10**12, 10**12)) + bytes(96), r"shape \(1000000000000"),
    (npy_header("<f8", (4, 3)) + bytes(96), r"shape \(4, 3\), expected \(3, 4\)"),
    (npy_header("<f4", (3, 4)) + bytes(48), "dtype '<f4'"),
    (npy_header("O", (3, 4)) + bytes(96), "dtype 'O'"),
    (npy_header("<i8", (3, 4)) + bytes(96), "dtype '<i8'"),
    (npy_header([("a", "<f8")], (3, 4)) + bytes(96), "dtype"),
    (npy_header("<f8", (3, -4)) + bytes(96), "not a valid .npy shape"),
    (npy_header("<f8", (3, 4)) + bytes(95), "bytes, expected"),
    (npy_header("<f8", (3, 4)) + bytes(97), "bytes, expected")],
    ids=lambda v: v if isinstance(v, str) else "")
def test_bad_array_member_refused(tmp_path, payload, match):
    members = model_members()
    members[1] = stored("W_x.npy", payload)
    check_refused(build_zip(tmp_path / "m.npz", members), match)


def test_array_declaring_an_absurd_shape_allocates_nothing(tmp_path):
    """The released loader (np.load) raised MemoryError for a member
    declaring shape 10**12; here the shape is checked against the expected
    bound before anything is allocated."""
    members = model_members()
    members[-1] = stored("loss_curve.npy", npy_header("<f8", (10**12,)) + bytes(24))
    path = build_zip(tmp_path / "m.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError), outcome
    assert f"at most {MAX_LOSS_LENGTH} long" in str(outcome)
    assert peak < 4 * MiB


def test_meta_rejected_by_expected_becomes_model_file_error(tmp_path, model):
    path = model[0]

    def picky(meta):
        raise KeyError("hyperparameters")
    with pytest.raises(ModelFileError, match="hyperparameters"):
        read_model(path, picky)


def test_a_malformed_expected_is_the_callers_bug(model):
    with pytest.raises(TypeError, match="expected"):
        read_model(model[0], lambda meta: {"W_x": ((3, "4"), np.float64)})
    with pytest.raises(TypeError, match="dtype"):
        read_model(model[0], lambda meta: {"W_x": ((3, 4), np.float16)})


def test_expected_errors_of_other_kinds_pass_through(model):
    def broken(meta):
        raise ZeroDivisionError("the caller's bug")
    with pytest.raises(ZeroDivisionError):
        read_model(model[0], broken)


def test_not_a_zip_file(tmp_path):
    for content in (b"", b"hello", b"\x93NUMPY" + bytes(100), b"PK\x05\x06" + bytes(18)):
        path = tmp_path / "m.npz"
        path.write_bytes(content)
        check_refused(path, "not a fastrnn model file")


def test_huge_central_directory_refused(tmp_path, model):
    """A zip end record claiming a table of contents of nearly the whole
    (2 MiB) file: zipfile would read all of it in one piece."""
    data = Path(model[0]).read_bytes()
    padding = bytes(2 * MiB)
    end = data[-22:]
    size_cd = struct.unpack("<L", end[12:16])[0] + len(padding)
    offset_cd = struct.unpack("<L", end[16:20])[0]
    cd = data[offset_cd:-22]
    path = tmp_path / "big-cd.npz"
    path.write_bytes(data[:offset_cd] + padding + cd + end[:12] + struct.pack("<L", size_cd)
                     + end[16:])
    check_refused(path, "zip structure of")


# ------------------------------------------------------------ corruptions
def test_every_single_byte_corruption_is_refused_or_harmless(tmp_path, model):
    """Each byte of a genuine model file flipped (all bits, and the lowest
    bit): every load either gives the same model or a ModelFileError.
    (Escapes seen before: NotImplementedError, RuntimeError, zlib.error...)"""
    path, meta, arrays = model
    good = Path(path).read_bytes()
    assert 1500 < len(good) < 4000
    bad_path = tmp_path / "bad.npz"
    outcomes = {"same": 0, "refused": 0}
    for offset in range(len(good)):
        for mask in (0xFF, 0x01):
            damaged = bytearray(good)
            damaged[offset] ^= mask
            bad_path.write_bytes(damaged)
            try:
                result = read_model(bad_path, expected)
            except ModelFileError as exc:
                assert str(exc).startswith(f"{bad_path}: ")
                outcomes["refused"] += 1
            else:
                assert_same(result, meta, arrays)
                outcomes["same"] += 1
    assert outcomes["refused"] > len(good)      # most bytes matter


def test_every_truncation_is_refused(tmp_path, model):
    good = Path(model[0]).read_bytes()
    bad_path = tmp_path / "bad.npz"
    for length in range(len(good)):
        bad_path.write_bytes(good[:length])
        with pytest.raises(ModelFileError):
            read_model(bad_path, expected)


def test_corrupted_deflated_file_is_refused_or_harmless(tmp_path):
    """The same with deflated members (np.savez_compressed): damaged deflate
    streams used to escape as zlib.error. Every 3rd byte, to stay quick."""
    arrays = make_arrays()
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(META)), **arrays)
    good = path.read_bytes()
    for offset in range(0, len(good), 3):
        damaged = bytearray(good)
        damaged[offset] ^= 0xFF
        path.write_bytes(damaged)
        try:
            result = read_model(path, expected)
        except ModelFileError:
            continue
        assert_same(result, META, arrays)


# ============================================================ zip bombs
def test_unknown_member_bomb_is_never_decompressed(tmp_path):
    """A 2 MiB file holding a member that inflates to 2 GiB: np.load
    decompressed it (2.2 GB resident) before any check."""
    bomb = dict(name="junk.npy", data=zeros_deflated(2048) + b"\x03\x00", method=8, crc=0,
                size=2**31, flags=0)
    path = build_zip(tmp_path / "bomb.npz", model_members() + [bomb])
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError) and "unknown member 'junk.npy'" in str(outcome)
    assert peak < 4 * MiB, peak


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_unknown_member_bomb_resident_memory(tmp_path):
    """The same, measured as the peak resident memory of a fresh process
    (what the review measured: 2.2 GB). The peak is reset first: a child
    process starts with its parent's (ru_maxrss survives fork and exec)."""
    bomb = dict(name="junk.npy", data=zeros_deflated(2048) + b"\x03\x00", method=8, crc=0,
                size=2**31, flags=0)
    path = build_zip(tmp_path / "bomb.npz", model_members() + [bomb])
    script = textwrap.dedent(f"""
        import numpy as np
        from fastrnn._modelfile import read_model, ModelFileError
        MAX_LOSS_LENGTH = {MAX_LOSS_LENGTH}
    """) + textwrap.dedent(inspect.getsource(expected)) + textwrap.dedent(f"""
        def peak_resident():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")                  # reset the peak to the current size
        before = peak_resident()
        try:
            read_model({str(path)!r}, expected)
            outcome = "read"
        except ModelFileError:
            outcome = "refused"
        print(outcome, peak_resident() - before)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    outcome, grown = run.stdout.split()
    assert outcome == "refused"
    assert int(grown) < BOUND, f"resident memory grew by {int(grown) / MiB:.0f} MiB"


def test_expected_member_declaring_a_bomb_is_refused_before_decompressing(tmp_path):
    """W_x.npy declares 2 GiB (its shape needs 96 bytes) and its stream
    holds them: refused from the table of contents."""
    members = model_members()
    payload = members[1]["data"]
    members[1].update(data=deflated(payload, then_zero_mib=2048), method=8, size=2**31)
    path = build_zip(tmp_path / "bomb.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError) and "declares 2147483648 bytes" in str(outcome)
    assert peak < 4 * MiB, peak


def test_stream_longer_than_declared_is_read_only_as_far_as_declared(tmp_path):
    """W_x.npy declares its true size, but its deflate stream goes on to
    inflate to 2 GiB: nothing past the declared size is decompressed."""
    members = model_members()
    payload = members[1]["data"]
    members[1].update(data=deflated(payload, then_zero_mib=2048), method=8)
    path = build_zip(tmp_path / "bomb.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert not isinstance(outcome, Exception) or isinstance(outcome, ModelFileError), outcome
    if not isinstance(outcome, Exception):
        assert_same(outcome, META, make_arrays())
    assert peak < 4 * MiB, peak


def test_meta_declaring_a_bomb_is_refused_before_decompressing(tmp_path):
    members = model_members()
    payload = members[0]["data"]
    members[0].update(data=deflated(payload, then_zero_mib=2048), method=8, size=2**31)
    path = build_zip(tmp_path / "bomb.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError) and "meta.npy: declares" in str(outcome)
    assert peak < 4 * MiB, peak


def test_meta_inflating_to_its_bound_costs_what_it_declares(tmp_path):
    """A meta.npy declaring the most characters allowed (2 Mi, 8 MiB as
    UTF-32), deflated from 8 KiB: read, and refused, within its bound."""
    n = _modelfile.MAX_META_CHARS
    header = npy_header(f"<U{n}", ())
    payload = header + bytes(4 * n)
    members = model_members()
    members[0].update(data=deflated(header, then_zero_mib=4 * n // MiB), method=8,
                      size=len(payload), crc=zlib.crc32(payload))
    path = build_zip(tmp_path / "bomb.npz", members)
    outcome, peak = traced_peak(lambda: read_model(path, expected))
    assert isinstance(outcome, ModelFileError), outcome
    assert "meta.npy: not valid JSON" in str(outcome)       # read to the end: all NULs
    assert peak < 4 * n + 20 * MiB, peak


# ====================================================== non-regular paths
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    outcome = call_with_timeout(lambda: read_model(fifo, expected), 10, release_fifo(fifo))
    assert isinstance(outcome, ModelFileError), outcome
    assert str(outcome) == (f"{fifo}: is a FIFO, not a fastrnn model file (a model file is "
                            f"a regular file)")


def test_directory_refused(tmp_path):
    check_refused(tmp_path, "is a directory, not a fastrnn model file")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_model(tmp_path / "missing.npz", expected)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_refused():
    outcome = call_with_timeout(lambda: read_model("/dev/zero", expected), 10)
    assert isinstance(outcome, ModelFileError) and "character device" in str(outcome)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_model_file_error(model):
    os.chmod(model[0], 0)
    with pytest.raises(ModelFileError, match="cannot read it"):
        read_model(model[0], expected)


# ================================================================ saving
def test_save_through_a_symlink_writes_its_target(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "model.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    written = write_model(link, META, make_arrays())
    assert written == os.path.realpath(target)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert_same(read_model(link, expected), META, make_arrays())
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real"]
    assert os.listdir(real_dir) == ["model.npz"]


def test_save_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "new.npz")
    write_model(link, META, make_arrays())
    assert link.is_symlink() and (tmp_path / "new.npz").is_file()


def test_save_returns_the_path_given(tmp_path):
    assert write_model(tmp_path / "m.npz", META, {}) == str(tmp_path / "m.npz")
    assert write_model(str(tmp_path / "m.npz"), META, {}) == str(tmp_path / "m.npz")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_model(tmp_path / "m.npz", META, make_arrays())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
def test_overwrite_keeps_the_mode(tmp_path, mode):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    old = os.umask(0o077)
    try:
        write_model(path, META, make_arrays())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert_same(read_model(path, expected), META, make_arrays())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anything")
def test_read_only_file_not_overwritten(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o444)
    with pytest.raises(PermissionError):
        write_model(path, META, make_arrays())
    assert path.read_bytes() == b"old"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_non_regular_target_not_replaced(tmp_path):
    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="is a FIFO; a model is written as a regular"):
        write_model(fifo, META, make_arrays())
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ModelFileError, match="is a directory"):
        write_model(tmp_path, META, make_arrays())
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                               interruption):
    path = Path(write_model(tmp_path / "m.npz", META, make_arrays(seed=1)))
    before = path.read_bytes()
    calls = []
    real_write_array = npy_format.write_array

    def write_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise interruption("interrupted")
        return real_write_array(*args, **kwargs)
    monkeypatch.setattr(_modelfile.npy_format, "write_array", write_then_stop)
    with pytest.raises(interruption):
        write_model(path, META, make_arrays(seed=2))
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_interrupted_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def refuse(source, target):
        raise KeyboardInterrupt
    monkeypatch.setattr(_modelfile.os, "replace", refuse)
    with pytest.raises(KeyboardInterrupt):
        write_model(tmp_path / "m.npz", META, make_arrays())
    assert os.listdir(tmp_path) == []
