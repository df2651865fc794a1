"""The network-loss potential (flat weights of an MLP on the paper's task) and the SGD-vs-Langevin comparison."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.dynamics import gradient_covariance, langevin, minibatch_covariance
from ibtheory.dynamics.network import NetworkLoss, compare_sgd_langevin, sgd_noise_along_training, torch_threads


@pytest.fixture(scope="module")
def task():
    with torch_threads(1):  # small networks: one thread is fastest, and others share the machine
        yield tasks.tishby()


def test_gradient_matches_finite_differences_and_per_sample_mean(task):
    loss = NetworkLoss(task, hidden=(4, 3), train=np.arange(0, 4096, 64), weight_decay=1e-3)
    w = loss.initial(2, seed=1)
    g = loss.grad(w)
    eps = 1e-6
    for j in (0, 17, loss.dim - 1):
        e = np.zeros(loss.dim)
        e[j] = eps
        fd = (loss.value(w + e) - loss.value(w - e)) / (2 * eps)
        assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-9, err_msg=f"parameter {j}")
    per = loss.per_sample_gradients(w)
    assert per.shape == (2, 64, loss.dim)
    assert_allclose(per.mean(axis=1) + 1e-3 * w, g, rtol=1e-9, atol=1e-12)


def test_layout_matches_batched_mlp(task):
    from ibtheory.nets import BatchedMLP

    loss = NetworkLoss(task, hidden=(5, 3))
    w = loss.initial(3, seed=2)
    w[:, -5:] = np.random.default_rng(0).normal(size=(3, 5))  # non-zero biases
    mlp = BatchedMLP(loss.widths, "tanh", [np.zeros((3, a, b)) for a, b in loss.shapes], dtype=torch.float64)
    mlp.load_flat(torch.as_tensor(w))
    x = torch.as_tensor(task["patterns"].values, dtype=torch.float64).T.expand(3, -1, -1)
    with torch.no_grad():
        ref = mlp(x)
    ours = loss.layers(torch.as_tensor(w))
    assert_allclose(ours[0].numpy(), ref[0].transpose(1, 2).numpy(), rtol=1e-12, atol=1e-15)
    assert_allclose(ours[-1].numpy(), torch.softmax(ref[-1], dim=1).transpose(1, 2).numpy(), rtol=1e-10)
    assert_allclose(mlp.flat_parameters().numpy(), w)


def test_langevin_runs_on_the_network_loss(task):
    loss = NetworkLoss(task, hidden=(3,), train=np.arange(0, 4096, 32))
    ds = langevin(loss, loss.initial(3, 0), beta=1e3, dt=0.05, n_steps=10, record="moments", seed=0,
                  progress=False)
    assert ds["energy"].values[-1] < ds["energy"].values[0]
    ixt, ity = loss.information(loss.initial(2, 0))
    assert ixt.shape == (2, 2) and np.all(ixt <= 12 + 1e-9) and np.all(ity <= ixt + 1e-9)


def test_compare_sgd_langevin_small(task):
    ds = compare_sgd_langevin(task, hidden=(4, 3), lr=0.1, batch_size=16, warmup_steps=30, n_steps=30,
                              repeats=2, n_records=4, train_fraction=0.05, seed=0)
    assert ds["I_XT_sgd"].dims == ("time", "layer", "repeat")
    assert ds["I_XT_sgd"].attrs["units"] == "bits"
    assert ds.attrs["beta"] > 0
    assert_allclose(ds["I_XT_sgd"].isel(time=0), ds["I_XT_langevin"].isel(time=0))  # same start
    assert np.all(ds["drift_langevin"].isel(time=-1) > 0)
    assert ds["weight_norm_gd"].dims == ("time", "layer", "repeat")
    w = ds["w_final_sgd"].values
    assert w.shape == (2, ds.sizes["dim"]) and np.all(np.isfinite(w))


SMALL = {"hidden": (4, 3), "lr": 0.1, "batch_size": 16, "warmup_steps": 30, "repeats": 4, "train_fraction": 0.05,
         "seed": 0}


def _pooled_layer_weights(loss, w, layer):
    """A layer's weight-matrix entries (biases excluded) of all networks in ``w`` (R, dim), pooled."""
    return loss.unflatten(torch.as_tensor(w))[layer - 1][0].numpy().ravel()


def test_compare_at_zero_temperature_is_gradient_descent(task):
    """beta -> infinity: Langevin (Euler, dt = lr) is the full-batch GD control, step for step (the noise
    sqrt(2 lr / beta) ~ 1e-150 is below float resolution): weights, losses, I(X;T) and the W1 distance between
    their weight distributions agree to float tolerance, while SGD's minibatch noise moves it away."""
    ds = compare_sgd_langevin(task, n_steps=30, n_records=4, beta=1e300, **SMALL)
    assert ds.attrs["beta"] == 1e300
    assert_allclose(ds["w_final_langevin"], ds["w_final_gd"], rtol=1e-12, atol=1e-12,
                    err_msg="Langevin at beta = 1e300 vs gradient descent (tol 1e-12)")
    assert_allclose(ds["loss_langevin"], ds["loss_gd"], rtol=1e-12)
    assert_allclose(ds["I_XT_langevin"], ds["I_XT_gd"], rtol=1e-12)
    assert_allclose(ds["weight_w1_langevin_gd"], 0.0, atol=1e-12)
    w1 = ds["weight_w1_sgd_langevin"].isel(time=-1).values
    assert np.all(w1 > 1e-3), f"SGD's noise must separate it from the noise-free dynamics: W1 {w1}"


def test_compare_langevin_first_step_noise_has_the_sgd_temperature(task):
    """One step from the same weights: w_langevin - w_gd = sqrt(2 lr / beta) xi exactly, xi ~ N(0, I) (d = 75
    parameters x 4 networks = 300 draws): standardised mean within 4 / sqrt(300) of 0 and variance within
    4 sqrt(2 / 300) of 1.  beta itself is the closed form 2 d B / (lr tr C) with C the per-sample gradient
    covariance at the switch (mean of tr C over the networks), recomputed here."""
    ds = compare_sgd_langevin(task, n_steps=1, n_records=2, **SMALL)
    beta, lr, b = ds.attrs["beta"], SMALL["lr"], SMALL["batch_size"]
    rng = np.random.default_rng(SMALL["seed"])
    train = rng.permutation(4096)[: int(round(SMALL["train_fraction"] * 4096))]
    loss = NetworkLoss(task, SMALL["hidden"], train=train)
    per = loss.per_sample_gradients(ds["w_switch"].values)
    tr_c = np.mean([np.trace(gradient_covariance(p)) for p in per])
    assert_allclose(beta, 2 * loss.dim * b / (lr * tr_c), rtol=1e-10, err_msg="beta = 2 d B / (lr tr C)")
    xi = ((ds["w_final_langevin"] - ds["w_final_gd"]).values / np.sqrt(2 * lr / beta)).ravel()
    n = xi.size
    assert abs(xi.mean()) < 4 / np.sqrt(n), f"noise mean {xi.mean():.3f} (tol {4 / np.sqrt(n):.3f})"
    assert abs(xi.var() - 1) < 4 * np.sqrt(2 / n), f"noise variance {xi.var():.3f} (tol 1 +- {4 * np.sqrt(2 / n):.3f})"


def test_compare_weight_distributions(task):
    """Per-layer pooled weight mean/std and the W1 distances: recomputed from the final weights (W1 of two
    equal-size samples = mean |sorted a - sorted b|), 0 at the switch, W1 >= |difference of means|."""
    ds = compare_sgd_langevin(task, n_steps=30, n_records=4, **SMALL)
    rng = np.random.default_rng(SMALL["seed"])
    loss = NetworkLoss(task, SMALL["hidden"], train=rng.permutation(4096)[:205])
    for kind in ("sgd", "langevin", "gd"):
        assert ds[f"weight_std_{kind}"].dims == ("time", "layer")
        assert ds[f"weight_std_{kind}"].attrs["units"].startswith("1")
    for pair in ("sgd_langevin", "sgd_gd", "langevin_gd"):
        assert_allclose(ds[f"weight_w1_{pair}"].isel(time=0), 0.0, atol=1e-15, err_msg=f"{pair}: same start")
    for layer in ds["layer"].values:
        a = _pooled_layer_weights(loss, ds["w_final_sgd"].values, layer)
        b = _pooled_layer_weights(loss, ds["w_final_langevin"].values, layer)
        end = {"time": -1, "layer": layer - 1}
        assert_allclose(ds["weight_mean_sgd"].isel(end), a.mean(), rtol=1e-12)
        assert_allclose(ds["weight_std_langevin"].isel(end), b.std(), rtol=1e-12)
        w1 = np.abs(np.sort(a) - np.sort(b)).mean()
        assert_allclose(ds["weight_w1_sgd_langevin"].isel(end), w1, rtol=1e-10, err_msg=f"layer {layer}")
        assert w1 >= abs(a.mean() - b.mean()) - 1e-15
        assert w1 > 0


def test_bad_input(task):
    with pytest.raises(ValueError, match="activation"):
        NetworkLoss(task, activation="swish")
    with pytest.raises(ValueError, match="weight_decay"):
        NetworkLoss(task, weight_decay=-1)
    with pytest.raises(ValueError, match="beta"):
        compare_sgd_langevin(task, beta=0.0)
    with pytest.raises(ValueError, match=r"^beta must be a real number, got '2' \(str\)"):
        compare_sgd_langevin(task, beta="2")  # refused before any work (a TypeError from np.isfinite before)
    loss = NetworkLoss(task, hidden=(3,), train=np.arange(0, 4096, 256))
    with pytest.raises(ValueError, match="keep_covariance"):
        sgd_noise_along_training(loss, loss.initial(1), lr=0.1, batch_size=4, n_steps=2, keep_covariance="yes")


def test_sgd_noise_along_training(task):
    loss = NetworkLoss(task, hidden=(4, 3), train=np.arange(0, 4096, 32))
    w0 = loss.initial(2, 0)
    ds = sgd_noise_along_training(loss, w0, lr=0.1, batch_size=8, n_steps=40, n_records=4, seed=0)
    assert ds["snr"].dims == ("time", "repeat")
    # tr C from the SVD equals the trace of the explicit per-sample covariance at the start
    per = loss.per_sample_gradients(w0)
    tr = np.array([np.trace(np.cov(p.T, bias=True)) for p in per])
    assert_allclose(ds["trace_c_batch"].isel(time=0).values, tr / 8, rtol=1e-10)
    assert np.all((ds["top_eig_fraction"] > 0) & (ds["top_eig_fraction"] <= 1 + 1e-12))


def test_sgd_noise_keeps_the_full_covariance(task):
    """keep_covariance=True: C_B(time, repeat, dim, dim_) is symmetric positive semi-definite, its trace is the
    stored ``trace_c_batch``, its top eigenvalue share is ``top_eig_fraction``, and at the start it equals C / B
    recomputed from the per-sample gradients (``gradient_covariance``, ``minibatch_covariance``)."""
    loss = NetworkLoss(task, hidden=(4, 3), train=np.arange(0, 4096, 32))
    w0 = loss.initial(2, 0)
    ds = sgd_noise_along_training(loss, w0, lr=0.1, batch_size=8, n_steps=20, n_records=3, seed=0,
                                  keep_covariance=True)
    c = ds["c_batch"].values
    assert ds["c_batch"].dims == ("time", "repeat", "dim", "dim_") and c.shape[2:] == (loss.dim, loss.dim)
    assert_allclose(c, np.swapaxes(c, 2, 3), rtol=0, atol=1e-15, err_msg="symmetric")
    eig = np.linalg.eigvalsh(c)
    assert np.all(eig >= -1e-12 * eig.max()), f"PSD: smallest eigenvalue {eig.min():.3g}"
    assert_allclose(np.trace(c, axis1=2, axis2=3), ds["trace_c_batch"].values, rtol=1e-10)
    assert_allclose(eig[..., -1] / eig.sum(-1), ds["top_eig_fraction"].values, rtol=1e-8)
    per = loss.per_sample_gradients(w0)
    for r in range(2):
        assert_allclose(c[0, r], minibatch_covariance(gradient_covariance(per[r]), 8), rtol=1e-10, atol=1e-16)
    # the layer coordinate selects a layer's block: layer 3 (softmax) has 3 x 2 weights + 2 biases
    block = ds["c_batch"].where((ds.parameter_layer == 3) & (ds.parameter_layer_ == 3), drop=True)
    assert block.shape[2:] == (8, 8)
