"""The MNIST digits as a task: p(x, y) uniform over chosen images with their one-hot labels, plus pixel features.

The task treats a set of n images as the whole input space, as the paper treats its 4096 patterns:

    p(x, y) = 1/n  if y = label(x),  else 0,     x = 0..n-1,  y = 0..9,

so p(x) is uniform, p(y|x) is one-hot (a deterministic task: I(X;Y) = H(Y) <= log2 10 = 3.32 bits, and the IB
curve is the trivial min(I(X;T), H(Y))), and the network estimators measure every layer over all n images.  The
inputs are the pixel intensities divided by 255, in [0, 1], optionally downsampled by block means (28x28 -> 14x14
averages each 2x2 block) to make training faster; they are stored as ``values(x, dim)`` (row-major pixels), which
:func:`ibtheory.nets.data.input_features` feeds to the networks, and the image size is kept in the attributes
``image_height`` and ``image_width`` for convolutional networks.

The files are the IDX files of LeCun et al. (``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``,
or ``train-...`` for the training split), read by :func:`ibtheory.idx.read_idx`; nothing is downloaded.

References
----------
1. Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document recognition",
   Proc. IEEE 86(11), 1998 (MNIST).
2. R. Shwartz-Ziv and N. Tishby, "Opening the black box of deep neural networks via information", arXiv:1703.00810
   (MNIST in the information plane).
3. A. M. Saxe et al., "On the information bottleneck theory of deep learning", ICLR 2018 (MNIST, tanh vs ReLU).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ._validate import show
from .idx import read_idx
from .tasks import from_joint

__all__ = ["N_CLASSES", "mnist_files", "load_mnist", "downsample", "mnist_task"]

#: Number of digit classes.
N_CLASSES = 10
_SPLITS = ("t10k", "train")


def mnist_files(directory: str | os.PathLike, split: str = "t10k") -> tuple[Path, Path]:
    """Paths of the images and labels IDX files of ``split`` ("t10k" or "train") in ``directory``.

    Accepts ``<split>-images-idx3-ubyte`` and ``<split>-labels-idx1-ubyte``, gzip-compressed (``.gz``) or not, and
    the variant spelling with a dot (``t10k-images.idx3-ubyte``).  Raises ``FileNotFoundError`` listing the names
    tried.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {show(split)}")
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"directory {str(folder)!r} does not exist or is not a folder")
    found = []
    for kind, ndim in (("images", 3), ("labels", 1)):
        names = [f"{split}-{kind}{sep}idx{ndim}-ubyte{ext}" for sep in ("-", ".") for ext in (".gz", "")]
        hit = next((folder / n for n in names if (folder / n).is_file()), None)
        if hit is None:
            raise FileNotFoundError(f"directory {str(folder)!r} has none of {names}")
        found.append(hit)
    return found[0], found[1]


def load_mnist(directory: str | os.PathLike, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, height, width) uint8 and labels (N,) uint8 of one split, checked for consistency.

    Raises ``ValueError`` when the images are not a 3-D uint8 array, the labels not a 1-D uint8 array of digits
    0..9, or their counts differ.
    """
    img_path, lab_path = mnist_files(directory, split)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{str(img_path)!r} must hold a 3-D uint8 array of images, got {images.dtype} "
                         f"shape {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{str(lab_path)!r} must hold a 1-D uint8 array of labels, got {labels.dtype} "
                         f"shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{str(img_path)!r} has {images.shape[0]} images but {str(lab_path)!r} has "
                         f"{labels.shape[0]} labels")
    if labels.size and labels.max() >= N_CLASSES:
        raise ValueError(f"{str(lab_path)!r} has label {int(labels.max())}; digits must be 0..9")
    return images, labels


def downsample(images: np.ndarray, pixels: int) -> np.ndarray:
    """Block means of uint8 images (N, H, W) scaled to [0, 1]: float32 (N, pixels, pixels * W // H).

    ``pixels`` is the new height; it must divide H (and the same factor must divide W).  ``pixels = H`` only
    rescales.  Example: a 2x2 image [[0, 255], [255, 255]] downsampled to 1 pixel is 0.75.

    >>> downsample(np.array([[[0, 255], [255, 255]]], dtype=np.uint8), 1).tolist()
    [[[0.75]]]
    """
    a = np.asarray(images)
    if a.ndim != 3:
        raise ValueError(f"images must have shape (N, height, width), got {a.shape}")
    n, h, w = a.shape
    if isinstance(pixels, bool) or int(pixels) != pixels or pixels < 1 or h % pixels:
        raise ValueError(f"pixels must be a positive integer dividing the image height {h}, got {show(pixels)}")
    f = h // int(pixels)
    if w % f:
        raise ValueError(f"pixels={pixels} needs a block size {f} that divides the image width {w}")
    blocks = a.reshape(n, h // f, f, w // f, f).astype(np.float32)
    return (blocks.mean(axis=(2, 4)) / np.float32(255.0)).astype(np.float32)


def mnist_task(
    directory: str | os.PathLike,
    n: int | None = None,
    seed: int | np.random.Generator | None = 0,
    pixels: int | None = None,
    split: str = "t10k",
) -> xr.Dataset:
    """The MNIST digits of one split as a task: uniform p(x) over the chosen images, one-hot p(y|x), 10 classes.

    Parameters
    ----------
    directory : folder with the IDX files (see :func:`mnist_files`); e.g. ``--mnist-dir`` of the experiment.
    n : number of images, drawn without replacement by ``seed`` and kept in file order; None: all of them.
    seed : int or ``numpy.random.Generator`` for the choice of images (ignored when n is None).
    pixels : height of the input images after block-mean downsampling; for MNIST 28, 14, 7, 4, 2 or 1; None keeps
        the files' size (no downsampling).
    split : "t10k" (the 10,000 test digits) or "train".

    Returns
    -------
    Dataset with ``p_xy(x, y)`` (n, 10): 1/n at (x, label(x)); ``values(x, dim)`` float32 pixel intensities in
    [0, 1] (dim = row * width + column); ``digit(x)`` the label; coordinates ``x`` (0..n-1), ``y`` (digits 0..9),
    ``dim`` and ``source_index(x)`` (row in the file).  Attributes: ``name`` "mnist", ``I_XY`` = ``H_Y`` (bits),
    ``H_X`` = log2 n (bits), ``deterministic`` 1, ``split``, ``image_height``, ``image_width``, ``n_images``.

    Example: with all 10,000 test digits H(Y) = 3.3199 bits (classes 892..1135 images each).
    """
    if n is not None and (isinstance(n, bool) or int(n) != n or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {show(n)}")
    images, labels = load_mnist(directory, split)
    total = images.shape[0]
    if n is None:
        chosen = np.arange(total)
    else:
        if n > total:
            raise ValueError(f"n = {n} exceeds the {total} images of split {split!r}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        chosen = np.sort(rng.choice(total, size=int(n), replace=False))
    feats = downsample(images[chosen], images.shape[1] if pixels is None else pixels)
    count, height, width = feats.shape
    digits = labels[chosen].astype(np.int64)
    p_xy = np.zeros((count, N_CLASSES))
    p_xy[np.arange(count), digits] = 1.0 / count
    ds = from_joint(p_xy, name="mnist", split=split, image_height=int(height), image_width=int(width),
                    n_images=int(count), source=str(Path(directory)))
    ds["values"] = (("x", "dim"), feats.reshape(count, height * width),
                    {"long_name": "pixel intensity / 255 (block mean)", "units": "1"})
    ds["digit"] = ("x", digits, {"long_name": "digit label"})
    return ds.assign_coords(dim=np.arange(height * width), source_index=("x", chosen))
