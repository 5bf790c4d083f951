"""The command line's data: the IDX files of ``--data-dir`` (or the defaults), checked against
``--dataset``, cut to ``--n-train`` / ``--n-test`` and preprocessed (:mod:`bregman_solvers.cli`)."""
import os

import numpy as np

from .datasets import (EMBEDDED_DIR, FASHION_MNIST_SYSTEM_DIR, _select, identify, load_fashion_mnist, load_mnist,
                       preprocess)


def _data_source(args):
    """The folder the data come from, in words (for messages and results.json)."""
    if args.data_dir is not None:
        return os.path.abspath(args.data_dir)
    env = os.environ.get("BREGMAN_SOLVERS_DATA")
    if env:
        return os.path.abspath(env)
    return EMBEDDED_DIR if args.dataset == "mnist" else FASHION_MNIST_SYSTEM_DIR


def _load(args):
    """Training and test data (the first ``--n-train`` / ``--n-test`` images, or with ``--subset random``
    a random selection of as many, seeded by ``--seed``), scaled to [0, 1] and centred by the training
    mean (returned too), and what was read: the folder, the set its labels are recognised as
    (``datasets.identify``) and the subset."""
    loader = load_mnist if args.dataset == "mnist" else load_fashion_mnist
    source = _data_source(args)
    try:
        Xtr, ytr = loader(args.data_dir, "train")
        Xte, yte = loader(args.data_dir, "test")
    except FileNotFoundError as exc:
        if args.data_dir is not None or isinstance(exc, NotADirectoryError):
            raise
        # the loader's advice is for Python callers; a command-line user passes --data-dir
        raise FileNotFoundError(f"no {args.dataset} files in {source} (there is no embedded {args.dataset}): pass "
                                f"--data-dir DIR with its four IDX files, or set BREGMAN_SOLVERS_DATA") from None
    for option, asked, available in (("--n-train", args.n_train, Xtr.shape[0]), ("--n-test", args.n_test,
                                                                                  Xte.shape[0])):
        if asked > available:
            where = f"{source} (the embedded subset: pass --data-dir for the full IDX files)" if (
                source == EMBEDDED_DIR) else source
            preset = " (--preset paper asks for the paper's sizes)" if getattr(args, "preset", None) == "paper" else ""
            raise ValueError(f"{option} {asked} is more than the {available} images in {where}{preset}")
    recognised = [identify(y) for y in (ytr, yte)]
    data = {"directory": source, "dataset": args.dataset,
            "recognised": [f"{k[0]} {k[1]}" if k else "not a standard set" for k in recognised]}
    if any(k is None for k in recognised):
        print(f"  note: {source} holds files that are not the standard {args.dataset} (their labels differ): "
              f"the tables are labelled {args.dataset} as asked", flush=True)
    # --subset random: a selection seeded by --seed (kept in file order), another one for the test set
    random = getattr(args, "subset", "first") == "random"
    Xtr, ytr = _select(Xtr, ytr, args.n_train, args.seed if random else None)
    Xte, yte = _select(Xte, yte, args.n_test, [args.seed, 1] if random else None)
    data["subset"] = "random" if random else "first"
    Xtr, Xte, mean = preprocess(Xtr, Xte, dtype=np.dtype(args.dtype).type)
    return Xtr, ytr, Xte, yte, mean, data
