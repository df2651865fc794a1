"""`ibtheory train` and `ibtheory plane` end to end on a tiny run; the figures exist and are PNGs."""

from ibtheory import store
from ibtheory.cli import main


def test_train_then_plane(tmp_path, capsys):
    run = tmp_path / "run.nc"
    fig = tmp_path / "run.png"
    rc = main(["train", "--repeats", "2", "--epochs", "4", "--snapshots", "4", "--hidden", "5-3", "--out", str(run),
               "--plot", str(fig), "--no-progress", "--estimators", "binning,ensemble"])
    assert rc == 0 and run.is_file() and fig.read_bytes()[:4] == b"\x89PNG"
    ds = store.load(run)
    assert ds.attrs["complete"] == 1 and ds.sizes["layer"] == 3 and "I_XT_ensemble" in ds
    assert "SNR transition epoch" in capsys.readouterr().out
    for kind in ("plane", "gradients", "learning", "all"):
        out = tmp_path / f"{kind}.png"
        assert main(["plane", str(run), "--out", str(out), "--kind", kind]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["plane", str(run), "--out", str(tmp_path / "k.png"), "--estimator", "kde_upper"]) == 2


def test_bad_train_arguments_exit_2(tmp_path):
    assert main(["train", "--train-fraction", "1.5", "--out", str(tmp_path / "x.nc")]) == 2
    assert main(["train", "--hidden", "5-0", "--out", str(tmp_path / "x.nc")]) == 2
    assert not (tmp_path / "x.nc").exists()
