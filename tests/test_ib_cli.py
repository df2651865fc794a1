"""`ibtheory curve`: built-in task and --p-xy task file, .nc and .png outputs, checked against the closed form of
the binary symmetric source."""

import struct

import numpy as np
from numpy.testing import assert_allclose
from scipy.optimize import brentq

from ibtheory import store
from ibtheory.cli import main


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
