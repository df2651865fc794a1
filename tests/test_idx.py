"""IDX reader/writer: hand-built byte strings (known answers), round trips, and every kind of bad file."""

import gzip
import re
import struct

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ibtheory.idx import IDX_TYPES, idx_header, read_idx, write_idx


def _idx_bytes(code: int, shape: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file built by hand from the format description (independent of write_idx)."""
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape) + body


def test_reads_hand_built_uint8_matrix(tmp_path):
    path = tmp_path / "m.idx"
    path.write_bytes(_idx_bytes(0x08, (2, 3), bytes([1, 2, 3, 250, 251, 255])))
    a = read_idx(path)
    assert a.dtype == np.uint8
    assert_array_equal(a, [[1, 2, 3], [250, 251, 255]])


@pytest.mark.parametrize(
    "code, fmt, values, dtype",
    [
        (0x09, ">b", [-128, -1, 127], np.int8),
        (0x0B, ">h", [258, -2, 32767], np.int16),
        (0x0C, ">i", [16909060, -5, 2**31 - 1], np.int32),
        (0x0D, ">f", [1.5, -0.25, 3.0e38], np.float32),
        (0x0E, ">d", [1.5, -2.0**-40, 1e300], np.float64),
    ],
)
def test_reads_big_endian_types(tmp_path, code, fmt, values, dtype):
    path = tmp_path / "v.idx"
    path.write_bytes(_idx_bytes(code, (3,), b"".join(struct.pack(fmt, v) for v in values)))
    a = read_idx(path)
    assert a.dtype == np.dtype(dtype) and a.dtype.isnative
    assert_array_equal(a, np.array(values, dtype=dtype))


def test_gzip_detected_by_content_not_name(tmp_path):
    raw = _idx_bytes(0x08, (4,), bytes([7, 2, 1, 0]))
    (tmp_path / "labels").write_bytes(gzip.compress(raw))  # gzip without .gz
    (tmp_path / "plain.gz").write_bytes(raw)  # plain despite .gz
    assert_array_equal(read_idx(tmp_path / "labels"), [7, 2, 1, 0])
    assert_array_equal(read_idx(tmp_path / "plain.gz"), [7, 2, 1, 0])


def test_writer_produces_the_format_bytes(tmp_path):
    path = write_idx(tmp_path / "w.idx", np.array([[1, -2]], dtype=np.int16))
    assert path.read_bytes() == _idx_bytes(0x0B, (1, 2), struct.pack(">hh", 1, -2))
    gz = write_idx(tmp_path / "w.idx.gz", np.array([[1, -2]], dtype=np.int16))
    assert gzip.decompress(gz.read_bytes()) == path.read_bytes()


@pytest.mark.parametrize("dtype", [dt.newbyteorder("=") for dt in IDX_TYPES.values()])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_every_type(tmp_path, dtype, name):
    rng = np.random.default_rng(1)
    a = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    b = read_idx(write_idx(tmp_path / name, a))
    assert b.dtype == a.dtype
    assert_array_equal(b, a)
    assert idx_header(tmp_path / name) == (a.dtype, (3, 4, 5))


def test_empty_axis_and_big_endian_input_round_trip(tmp_path):
    assert read_idx(write_idx(tmp_path / "e.idx", np.zeros((0, 3), np.uint8))).shape == (0, 3)
    be = np.array([1.25, 2.5], dtype=">f8")
    assert_array_equal(read_idx(write_idx(tmp_path / "b.idx", be)), [1.25, 2.5])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "two zero bytes"),
        (b"PK\x03\x04" + b"\x00" * 20, "two zero bytes"),
        (_idx_bytes(0x0A, (2,), b"\x00\x00"), "unknown IDX type code 0x0A"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8, 3]) + struct.pack(">I", 10), "truncated inside its header"),
        (_idx_bytes(0x08, (10, 2), bytes(19)), "truncated: shape (10, 2)"),
        (_idx_bytes(0x0C, (2,), bytes(7)), "needs 8 data bytes"),
        (_idx_bytes(0x08, (2,), bytes(3)), "1 trailing bytes"),
    ],
    ids=["short", "magic", "zip", "type", "ndim0", "header", "body", "int32-body", "trailing"],
)
def test_bad_files_raise_value_error(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        read_idx(path)
    path.write_bytes(gzip.compress(content))  # the same inside gzip
    with pytest.raises(ValueError, match=re.escape(message)):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    full = gzip.compress(_idx_bytes(0x08, (1000,), bytes(range(250)) * 4))
    path = tmp_path / "cut.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "nope.idx")


@pytest.mark.parametrize("array", [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.complex64),
                                   np.array(5, np.uint8)])
def test_writer_rejects_what_idx_cannot_hold(tmp_path, array):
    with pytest.raises(ValueError, match="array"):
        write_idx(tmp_path / "x.idx", array)
    assert not list(tmp_path.iterdir()), "a rejected write must leave no file behind"
