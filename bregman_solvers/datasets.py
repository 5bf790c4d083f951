"""MNIST-format data: IDX file reading, the embedded default subset and the paper's preprocessing.

``load_mnist(path, subset)`` reads the standard IDX files (gzipped or not) from
``path``, else from the directory in the ``BREGMAN_SOLVERS_DATA`` environment
variable, else returns the **embedded subset** shipped inside the package (the
first 5,000 training and 1,000 test images of MNIST), so that everything runs on a
fresh machine without a download. ``load_fashion_mnist`` also looks where Debian's
``dataset-fashion-mnist`` package installs the files.
"""
import gzip
import os
import zlib

import numpy as np

from ._validation import check_integer

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "one_hot", "preprocess", "add_gaussian_noise",
           "EMBEDDED_DIR", "FASHION_MNIST_SYSTEM_DIR", "identify"]

#: The embedded MNIST subset (5,000 training and 1,000 test images).
EMBEDDED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
#: Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: sha256 of the label files' contents (decompressed, as read) of the standard sets and of the embedded
#: MNIST subset: which set a folder holds, whatever its compression or file names
KNOWN_LABELS = {
    "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13": ("mnist", "train"),
    "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5": ("mnist", "test"),
    "4263f048ea43702387ef1c8494b59e785853c0410e9770600d50f541a6fee264": ("mnist", "train"),   # embedded
    "d14ba0a1a3818edefa35518ed001ece84b7ac0eabe9394551c73928493175d3f": ("mnist", "test"),    # embedded
    "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7": ("fashion-mnist", "train"),
    "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9": ("fashion-mnist", "test"),
}
_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
# IDX type codes -> numpy dtypes (big-endian)
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read one IDX file (``.gz`` or plain) into an array, checking its header and length.

    The header is read first and the data in chunks, so a corrupt header that claims more entries
    than the file holds (or a gzip bomb) is an error before anything of that size is allocated.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
                raise ValueError(f"{path} is not an IDX file (bad magic number {magic!r})")
            ndim = magic[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"{path} is truncated (incomplete header)")
            shape = tuple(int.from_bytes(dims[4 * i:4 + 4 * i], "big") for i in range(ndim))
            dtype = np.dtype(_IDX_TYPES[magic[2]])
            expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
            chunks, size = [], 0
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > expected:
                    raise ValueError(f"{path} is corrupt: header says {shape} ({expected} bytes of data), "
                                     f"the file holds more")
                chunks.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from exc
    if size != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says {shape} ({expected} bytes of data), "
                         f"found {size} bytes")
    return np.frombuffer(b"".join(chunks), dtype=dtype).reshape(shape)


def _find(directory, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


def identify(labels):
    """``(data set, subset)`` of a standard label array (MNIST, Fashion-MNIST, the embedded subset),
    recognised by the sha256 of its contents; None for any other data."""
    import hashlib

    return KNOWN_LABELS.get(hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest())


def _load_pair(path, subset, dataset=None):
    if subset not in _FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"data directory {path} is a file: pass the directory that holds the four IDX files")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"data directory {path} does not exist")
    images = read_idx(_find(path, _FILES[subset][0]))
    labels = read_idx(_find(path, _FILES[subset][1]))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"{path}: images {images.shape} and labels {labels.shape} do not match")
    known = identify(labels)
    if dataset is not None and known is not None and known[0] != dataset:
        raise ValueError(f"{path} holds {_NAMES[known[0]]}'s files (recognised by their labels), not "
                         f"{_NAMES[dataset]}'s")
    return images.reshape(images.shape[0], -1), labels


def _select(images, labels, n_samples, random_state):
    if n_samples is None:
        return images, labels
    check_integer(n_samples, "n_samples")
    if n_samples > images.shape[0]:
        raise ValueError(f"n_samples={n_samples} exceeds the {images.shape[0]} images available")
    if random_state is None:
        return images[:n_samples], labels[:n_samples]
    idx = np.sort(np.random.default_rng(random_state).choice(images.shape[0], n_samples, replace=False))
    return images[idx], labels[idx]


def load_mnist(path=None, subset="train", n_samples=None, random_state=None):
    """Images (uint8, shape (n, 784)) and labels (uint8, shape (n,)) of MNIST.

    Parameters
    ----------
    path : str, optional
        Directory with the four IDX files (``.gz`` or not). Default: the directory in
        ``$BREGMAN_SOLVERS_DATA``, else the embedded subset (5,000 training and 1,000
        test images; see :data:`EMBEDDED_DIR`).
    subset : {"train", "test"}
    n_samples : int, optional
        Keep this many images: the first ones, or a seeded random selection (in
        order) with ``random_state``.
    random_state : int or None

    Raises
    ------
    FileNotFoundError
        The directory or a file is missing (``NotADirectoryError`` where ``path`` is a file).
    ValueError
        A file is not an IDX file, is truncated or corrupt, images and labels disagree, or the
        folder holds another standard set (Fashion-MNIST's files, recognised by their labels:
        :func:`identify`).
    """
    if path is None:
        path = os.environ.get("BREGMAN_SOLVERS_DATA") or EMBEDDED_DIR
    return _select(*_load_pair(path, subset, "mnist"), n_samples, random_state)


def load_fashion_mnist(path=None, subset="train", n_samples=None, random_state=None):
    """Fashion-MNIST in the MNIST format; same arguments as :func:`load_mnist`.

    Default directory: ``$BREGMAN_SOLVERS_DATA``, else :data:`FASHION_MNIST_SYSTEM_DIR`
    (Debian's ``dataset-fashion-mnist``). There is no embedded Fashion-MNIST.
    """
    if path is None:
        path = os.environ.get("BREGMAN_SOLVERS_DATA") or FASHION_MNIST_SYSTEM_DIR
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"Fashion-MNIST not found in {path}: pass path=, set BREGMAN_SOLVERS_DATA, or install "
                f"Debian's dataset-fashion-mnist package")
    return _select(*_load_pair(path, subset, "fashion-mnist"), n_samples, random_state)


def one_hot(labels, n_classes=None, dtype=np.float64):
    """One-hot rows for integer labels."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError("labels must be a 1-D array of non-negative integers")
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def preprocess(train_images, *others, dtype=np.float32, centre=True):
    """Scale to [0, 1] and centre by the training mean (as in the paper); returns the arrays and the mean."""
    train = np.asarray(train_images, dtype=dtype) / dtype(255) if np.dtype(dtype).kind == "f" else None
    if train is None:
        raise TypeError("dtype must be a floating dtype")
    mean = train.mean(axis=0) if centre else np.zeros(train.shape[1], dtype)
    out = [train - mean] + [np.asarray(o, dtype=dtype) / dtype(255) - mean for o in others]
    return (*out, mean)


def add_gaussian_noise(X, std, random_state=None):
    """``X`` plus Gaussian noise of standard deviation ``std`` (a new array of X's dtype)."""
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    rng = np.random.default_rng(random_state)
    X = np.asarray(X)
    return (X + rng.normal(0.0, std, size=X.shape)).astype(X.dtype if X.dtype.kind == "f" else np.float64)
