"""`ibtheory curve`: built-in task and --p-xy task file, .nc and .png outputs, checked against the closed form of
the binary symmetric source; users' tables (.npy, .csv, .tsv, .txt) and samples, checked against the same table given
in Python."""

import csv
import struct

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import brentq

from ibtheory import store, tasks
from ibtheory.cli import main
from ibtheory.ib import ib_curve


def _h2(q: float) -> float:
    return 0.0 if q in (0.0, 1.0) else float(-q * np.log2(q) - (1 - q) * np.log2(1 - q))


def _gerber(i_xt: float, p: float) -> float:
    """The IB curve of X ~ Bern(1/2), Y = X xor Bern(p): T = X xor Bern(q) is optimal (Mrs. Gerber's lemma), so
    I(X;T) = 1 - h2(q) and I(T;Y) = 1 - h2(q (1 - p) + (1 - q) p)."""
    if i_xt <= 0:
        return 0.0
    q = 0.0 if i_xt >= 1 else brentq(lambda r: 1 - _h2(r) - i_xt, 0.0, 0.5, xtol=1e-15)
    return 1 - _h2(q * (1 - p) + (1 - q) * p)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_curve_cli_builtin_and_task_file(tmp_path, capsys):
    nc, png = tmp_path / "bsc.nc", tmp_path / "bsc.png"
    assert main(["curve", "--task", "binary-symmetric", "--p", "0.2", "--n-betas", "12",
                 "--out", str(nc), "--plot", str(png)]) == 0
    c = store.load(nc)
    width, height = _png_size(png)
    assert width > 300 and height > 200
    assert c["I_XT"].attrs["units"] == "bits" and "gap" in c
    out = capsys.readouterr().out
    assert "critical betas" in out and "largest certified gap" in out
    # every stored point lies on the closed-form curve, I(X;Y) = 1 - h2(0.2), and the one critical beta is
    # 1 / (1 - 2p)^2 (Tishby et al.'s first phase transition of the binary symmetric source)
    for i_xt, i_ty in zip(c["I_XT"].values, c["I_TY"].values, strict=True):
        assert_allclose(i_ty, _gerber(float(i_xt), 0.2), atol=1e-9, err_msg=f"I(X;T) = {i_xt}")
    assert_allclose(c.attrs["I_XY"], 1 - _h2(0.2), rtol=1e-13)
    assert_allclose(c["critical_betas"].values, [1 / 0.6**2], rtol=1e-3)
    assert c["I_XT"].max() > 0.99 and c["I_XT"].min() < 1e-9, "the grid must span the whole curve"
    task = tmp_path / "task.nc"
    assert main(["task", "--name", "binary-symmetric", "--p", "0.2", "--out", str(task)]) == 0
    assert main(["curve", "--p-xy", str(task), "--n-betas", "12", "--out", str(tmp_path / "c2.nc")]) == 0
    c2 = store.load(tmp_path / "c2.nc")
    assert_allclose(c2.attrs["I_XY"], c.attrs["I_XY"], rtol=1e-12)
    assert_allclose(c2["I_TY"].values, c["I_TY"].values, atol=1e-12)
    assert np.all(c2["encoder"].sum("t").values > 1 - 1e-12)


def test_curve_cli_hard_labels_say_why(tmp_path, capsys):
    assert main(["curve", "--task", "tishby", "--n-betas", "4", "--out", str(tmp_path / "h.nc")]) == 0
    assert "trivial" in capsys.readouterr().out
    # deterministic labels: the curve is min(I(X;T), H(Y)) and H(Y) = I(X;Y) = 0.999157 bits
    c = store.load(tmp_path / "h.nc")
    assert_allclose(c["I_TY"].values, np.minimum(c["I_XT"].values, c.attrs["H_Y"]), atol=1e-9)
    assert round(c.attrs["H_Y"], 6) == 0.999157


def test_curve_cli_bad_file(tmp_path, capsys):
    assert main(["curve", "--p-xy", str(tmp_path / "missing.nc")]) == 2
    assert "does not exist" in capsys.readouterr().err


# --- users' own tables: --p-xy FILE (.npy, .csv, .tsv, .txt) and --samples FILE --------------------------------------

# a 4 x 3 noisy channel with a non-uniform p(x): rows x, columns y, sums to 1
P_TABLE = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]) \
    * np.array([0.4, 0.3, 0.2, 0.1])[:, None]
# counts with total 128 and largest count 64 (powers of two: n / sum n is exact however it is computed)
COUNTS = np.array([[64, 5, 5], [3, 24, 3], [2, 2, 16], [1, 2, 1]])


def _write_table(path, rows, delimiter=",", encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)


def _labelled(table, fmt=repr):
    return [["x \\ y", "y0", "y1", "y2"]] + [[f"x{i}", *(fmt(v) for v in row)] for i, row in enumerate(table.tolist())]


def _csv_bom_header(tmp_path):
    _write_table(tmp_path / "t.csv", _labelled(P_TABLE), encoding="utf-8-sig")  # Excel's "CSV UTF-8"
    return tmp_path / "t.csv", [], P_TABLE


def _semicolons_decimal_commas(tmp_path):
    _write_table(tmp_path / "t.csv", _labelled(P_TABLE, lambda v: repr(v).replace(".", ",")), delimiter=";")
    return tmp_path / "t.csv", [], P_TABLE


def _tsv(tmp_path):
    _write_table(tmp_path / "t.tsv", [["y0", "y1", "y2"], *P_TABLE.tolist()], delimiter="\t")
    return tmp_path / "t.tsv", [], P_TABLE


def _txt_savetxt(tmp_path):
    np.savetxt(tmp_path / "t.txt", P_TABLE, fmt="%.17g", header="rows x, columns y")
    return tmp_path / "t.txt", [], P_TABLE


def _npy(tmp_path):
    np.save(tmp_path / "t.npy", P_TABLE)
    return tmp_path / "t.npy", [], P_TABLE


def _counts_normalize(tmp_path):
    _write_table(tmp_path / "counts.csv", _labelled(COUNTS, str))
    return tmp_path / "counts.csv", ["--normalize"], COUNTS / COUNTS.sum()


FORMATS = [_csv_bom_header, _semicolons_decimal_commas, _tsv, _txt_savetxt, _npy, _counts_normalize]


@pytest.mark.parametrize("make", FORMATS, ids=[f.__name__.lstrip("_") for f in FORMATS])
def test_curve_cli_from_a_table_file_equals_ib_curve_of_the_table(tmp_path, capsys, make):
    path, extra, table = make(tmp_path)
    out = tmp_path / "c.nc"
    assert main(["curve", "--p-xy", str(path), *extra, "--n-betas", "12", "--out", str(out)]) == 0
    assert f"read {path}: 4 x 3 table" in capsys.readouterr().out
    got, want = store.load(out), ib_curve(table, n_betas=12)
    assert_allclose(got.attrs["I_XY"], want.attrs["I_XY"], rtol=0, atol=1e-12)
    for var in ("beta", "I_XT", "I_TY", "critical_betas"):
        assert_allclose(got[var].values, want[var].values, rtol=0, atol=1e-12, err_msg=var)


def test_curve_cli_from_samples_equals_from_samples(tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.choice(np.array(["cat", "dog", "emu"]), size=200)
    y = np.where(rng.random(200) < 0.8, (x == "cat").astype(int), rng.integers(0, 3, 200))
    _write_table(tmp_path / "pairs.csv", [["animal", "label"], *zip(x.tolist(), y.tolist(), strict=True)])
    out = tmp_path / "c.nc"
    assert main(["curve", "--samples", str(tmp_path / "pairs.csv"), "--n-betas", "12", "--out", str(out)]) == 0
    assert "200 samples, 3 x symbols and 3 y symbols, header row" in capsys.readouterr().out
    want = ib_curve(tasks.from_samples(x, y)["p_xy"].values, n_betas=12)
    got = store.load(out)
    for var in ("beta", "I_XT", "I_TY"):
        assert_allclose(got[var].values, want[var].values, rtol=0, atol=1e-12, err_msg=var)


BAD_FILES = [
    # (file name, content, extra options, what the one-line message must say besides the file name)
    ("ragged.csv", "y0,y1\n0.5,0.25\n0.25\n", [], "row 3 has 1 cell(s) but row 1 has 2"),
    ("cell.csv", "0.5,0.25\n0.125,O.125\n", [], "row 2, column 2 is 'O.125', not a number"),
    ("excel.csv", "0.5,0.25\n#DIV/0!,0.25\n", [], "row 2, column 1 is '#DIV/0!', not a number"),
    ("negative.tsv", "0.5\t0.25\n0.5\t-0.25\n", [], "row 2, column 2 is '-0.25'; entries must be non-negative"),
    ("empty.csv", "", [], "is empty"),
    ("counts.csv", "3,1\n1,3\n", [], "sums to 8, not 1: a table of counts or weights n(x,y) is rescaled to "
                                     "p(x,y) = n(x,y) / sum n with --normalize"),
    ("table.xlsx", "PK\x03\x04", [], "unknown extension '.xlsx'"),
    ("pairs.csv", "x,y\na,1\nb,2,3\n", ["--samples"], "row 3 has 3 cell(s); each row is one sample"),
    ("pairs.txt", "a 1\nNA 2\n", ["--samples"], "row 2, column 1 is 'NA', a missing or infinite value"),
]


@pytest.mark.parametrize(("fname", "content", "flag", "needle"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_curve_cli_bad_table_files_are_one_line_naming_file_and_row(tmp_path, capsys, fname, content, flag, needle):
    path = tmp_path / fname
    path.write_text(content)
    opt = flag[0] if flag else "--p-xy"
    assert main(["curve", opt, str(path), "--out", str(tmp_path / "c.nc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ibtheory curve: error: {opt} '{path}'"), err
    assert needle in err, err
    assert not (tmp_path / "c.nc").exists()


@pytest.mark.parametrize(("shape", "needle"), [((4,), "got shape (4,)"), ((2, 2, 1), "got shape (2, 2, 1)")])
def test_curve_cli_npy_that_is_not_2d(tmp_path, capsys, shape, needle):
    np.save(tmp_path / "a.npy", np.full(shape, 0.25))
    assert main(["curve", "--p-xy", str(tmp_path / "a.npy")]) == 2
    err = capsys.readouterr().err
    assert f"--p-xy '{tmp_path / 'a.npy'}' must hold a 2-D array" in err and needle in err, err


CONFLICTS = [
    (["--p-xy", "{T}", "--gamma", "19.05"], "--gamma sets a built-in task's parameters and cannot be combined with "
                                            "--p-xy"),
    (["--samples", "{S}", "--p", "0.2", "--rho", "0.5"], "--p, --rho set a built-in task's parameters"),
    (["--samples", "{S}", "--normalize"], "--normalize applies to a --p-xy table"),
    (["--task", "binary-symmetric", "--normalize"], "--normalize applies to a --p-xy table"),
    (["--header", "yes"], "--header applies to a --p-xy or --samples text file"),
    (["--rho", "0.5"], "--rho applies to --task gaussian_discretized, not to --task tishby"),
    (["--task", "gaussian", "--gamma", "3"], "--gamma applies to --task tishby, not to --task gaussian_discretized"),
    (["--p-xy", "{N}", "--header", "no"], "header applies to text tables"),
    (["--p-xy", "{N}", "--normalize"], "normalize applies to .npy and text tables"),
]


@pytest.mark.parametrize(("argv", "needle"), CONFLICTS, ids=[" ".join(a) for a, _ in CONFLICTS])
def test_curve_cli_options_that_do_not_go_together(tmp_path, capsys, argv, needle):
    """Built-in task options used to be ignored silently with --p-xy (and --rho with the tishby task)."""
    _write_table(tmp_path / "t.csv", P_TABLE.tolist())
    _write_table(tmp_path / "s.csv", [["a", "1"], ["b", "0"]])
    assert main(["task", "--name", "binary-symmetric", "--out", str(tmp_path / "t.nc")]) == 0
    capsys.readouterr()
    names = {"T": tmp_path / "t.csv", "S": tmp_path / "s.csv", "N": tmp_path / "t.nc"}
    assert main(["curve", *(a.format(**names) for a in argv), "--n-betas", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_curve_cli_file_sources_are_mutually_exclusive(tmp_path, capsys):
    for argv in (["--p-xy", "a.csv", "--samples", "b.csv"], ["--task", "tishby", "--p-xy", "a.csv"]):
        with pytest.raises(SystemExit) as info:
            main(["curve", *argv])
        assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["curve", "solve"])
def test_help_explains_the_file_formats(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for needle in (".npy", ".csv .tsv .txt", "semicolons", "--normalize, which rescales it", "--samples FILE",
                   "Row 1 is a header", "a BOM allowed"):
        assert needle in out, needle


def test_curve_cli_forward_method(tmp_path, capsys):
    """``--method forward`` on the binary symmetric source: the one critical beta 1 / (1 - 2p)^2 with its precision,
    every point on the closed-form (Mrs. Gerber) curve."""
    nc = tmp_path / "bsc_forward.nc"
    assert main(["curve", "--task", "binary-symmetric", "--p", "0.2", "--n-betas", "16", "--method", "forward",
                 "--out", str(nc)]) == 0
    c = store.load(nc)
    out = capsys.readouterr().out
    assert "(forward path)" in out and "%" in out
    assert c.attrs["method"] == "forward"
    for i_xt, i_ty in zip(c["I_XT"].values, c["I_TY"].values, strict=True):
        assert_allclose(i_ty, _gerber(float(i_xt), 0.2), atol=1e-9, err_msg=f"I(X;T) = {i_xt}")
    b = c["critical_betas"].values[0]
    assert abs(b - 1 / 0.6**2) <= max(float(c["critical_precision"].values[0]), 1e-6) * b + 1e-9
