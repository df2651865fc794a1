"""The training engine: device-side minibatch orders, one loop for every model, worker processes, memory check."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ibtheory import nets, tasks
from ibtheory.nets import data
from ibtheory.nets.loop import TrainConfig, prepare

SMALL = dict(hidden=(6, 4, 3), repeats=5, epochs=6, snapshots=5, batch_size=256, progress=False)


@pytest.fixture(scope="module")
def task():
    return tasks.tishby()


@pytest.mark.parametrize("epoch", [0, 1, 77, 9999, 2**30])
def test_torch_orders_are_the_numpy_orders_bit_for_bit(epoch):
    keys = data.shuffle_keys(data.repeat_generators(11, np.arange(9)))
    for n in (1, 2, 513, 3277):
        expected = data.epoch_orders(keys, epoch, n)
        got = data.epoch_orders_torch(torch.as_tensor(keys.view(np.int64)), epoch, n).numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"epoch {epoch}, n_train {n}")
        assert (np.sort(got, axis=1) == np.arange(n)).all(), "each row is a permutation"


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 4e-4), ("sgd", 0.05)])
def test_worker_processes_give_the_single_process_numbers(task, optimizer, lr):
    kw = dict(SMALL, optimizer=optimizer, lr=lr, dtype="float64", seed=2)
    one = nets.train(task, workers=1, **kw)
    two = nets.train(task, workers=2, **kw)
    for name in ("I_XT", "I_TY", "train_loss", "test_accuracy", "grad_mean_norm", "grad_std_norm",
                 "checkpoint_params", "checkpoint_opt_m", "checkpoint_opt_v"):
        assert_allclose(two[name].values, one[name].values, rtol=1e-9, atol=1e-12,
                        err_msg=f"{name}: 2 worker processes vs 1 (tol 1e-9)")
    assert two.attrs["checkpoint_opt_step"] == one.attrs["checkpoint_opt_step"]


def test_worker_processes_resume_like_one(task, tmp_path, interrupt_measuring):
    kw = dict(SMALL, epochs=12, snapshots=8, checkpoint_seconds=1e9, seed=5)
    full = nets.train(task, workers=1, **kw)
    arm, disarm = interrupt_measuring
    out = tmp_path / "run.nc"
    arm(4)
    with pytest.raises(KeyboardInterrupt):
        nets.train(task, out=out, workers=2, **kw)
    disarm()
    resumed = nets.train(task, out=out, workers=2, **kw)
    for name in ("I_XT", "I_TY", "train_loss", "grad_mean_norm", "checkpoint_params"):
        assert_allclose(resumed[name].values, full[name].values, rtol=1e-5, atol=1e-6,
                        err_msg=f"{name}: resumed with 2 workers vs uninterrupted with 1 (tol 1e-5)")


def test_divergence_in_a_worker_names_the_same_epoch_and_repeats(task):
    errors = []
    for workers in (1, 2):
        with pytest.raises(nets.TrainingDiverged) as exc:
            nets.train(task, lr=1e36, workers=workers, **SMALL)
        errors.append(exc.value)
    assert (errors[1].epoch, errors[1].repeats, errors[1].what) == (errors[0].epoch, errors[0].repeats,
                                                                    errors[0].what)
    assert "of 5" in str(errors[1]), "the message counts all repeats of the run"


def test_flat_buffer_views_and_rows_round_trip():
    from ibtheory.nets.model import BatchedMLP, init_weights

    widths = (12, 5, 3, 2)
    weights = init_weights(widths, data.repeat_generators(0, np.arange(4)))
    model = BatchedMLP(widths, "tanh", weights, dtype=torch.float64)
    rows = model.flat_parameters().numpy()
    expected = np.concatenate([w.reshape(4, -1) for w in weights] + [np.zeros((4, w)) for w in widths[1:]], axis=1)
    np.testing.assert_array_equal(rows, expected)
    with torch.no_grad():
        model.flat.add_(1.0)  # the parameters are views of the flat buffer
    assert_allclose(model.weights[1].detach().numpy(), weights[1] + 1.0, rtol=0, atol=1e-15)
    back = model.from_rows(torch.from_numpy(rows))
    np.testing.assert_array_equal(back.numpy() + 1.0, model.flat.numpy())


def test_conv_ensemble_uses_the_one_loop_and_checkpoints_adam_moments():
    from ibtheory.nets.conv import iter_conv_training

    images = tasks.tishby()
    images.attrs.update(image_height=3, image_width=4)
    cfg = TrainConfig(hidden=(4,), activation="relu", repeats=2, epochs=2, snapshots=3, batch_size=1024, lr=1e-3)
    snaps = list(iter_conv_training(images, cfg, channels=(2,), kernel=3))
    assert [s.epoch for s in snaps] == [0, 1, 2]
    ck = snaps[-1].checkpoint
    assert ck["opt_m"].shape == ck["params"].shape and np.abs(ck["opt_v"]).sum() > 0
    assert ck["opt_step"] == 2 * 4, "two epochs of four minibatches"


def test_a_width_that_does_not_fit_memory_is_refused_before_training(task, monkeypatch):
    import ibtheory.nets.loop as loop

    with pytest.raises(ValueError, match=r"^hidden \(2000000000,\) with 50 repeats .* GiB are free"):
        nets.train(task, hidden=(2_000_000_000,), repeats=50, epochs=1, progress=False)
    monkeypatch.setattr(loop, "_free_memory", lambda device: 10**6)  # 1 MB free: the paper's network needs more
    with pytest.raises(ValueError, match="^hidden"):
        prepare(task, TrainConfig(repeats=50, epochs=1))
    monkeypatch.setattr(loop, "_free_memory", lambda device: 10**12)
    prepare(task, TrainConfig(repeats=2, epochs=1))


@pytest.mark.parametrize(("device", "match"), [
    ("gpu", "device must be 'cpu', 'cuda' or 'cuda:N'"), ("cuda:x", "device must be"), ("", "device must be"),
    ("cuda:7", "device 'cuda:7' was asked for but"),
])
def test_bad_devices_are_refused_with_one_clear_error(task, device, match):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(ValueError, match=match):
        nets.train(task, device=device, **SMALL)


def test_workers_are_checked(task):
    with pytest.raises(ValueError, match="^workers must be an integer >= 1"):
        nets.train(task, workers=0, **SMALL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_direct_fused_adam_step_is_torch_optim_adam_bit_for_bit(task, monkeypatch, dtype):
    from ibtheory.nets import loop

    cfg = TrainConfig(hidden=(6, 4), repeats=3, epochs=4, snapshots=3, batch_size=500, dtype=dtype)
    direct = list(loop.iter_training(task, cfg))[-1].checkpoint
    monkeypatch.setattr(loop, "_stepper", lambda opt, flat: opt.step)  # the optimiser's own step
    stock = list(loop.iter_training(task, cfg))[-1].checkpoint
    assert direct["opt_step"] == stock["opt_step"] == 4 * 7
    for key in ("params", "opt_m", "opt_v"):
        np.testing.assert_array_equal(direct[key], stock[key], err_msg=f"{key}: direct fused Adam vs opt.step()")


def test_auto_workers_stays_in_process_off_the_main_thread():
    """A long CPU run would use worker processes, but not from a thread other than the main one (a dask worker
    thread): forking there can copy a held lock."""
    import threading

    from ibtheory.nets._parallel import auto_workers
    from ibtheory.nets.loop import TrainConfig

    cfg = TrainConfig(repeats=50, epochs=10_000)
    out = []
    th = threading.Thread(target=lambda: out.append(auto_workers(cfg)))
    th.start()
    th.join()
    assert out == [1]
