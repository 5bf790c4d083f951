"""The command line: the paper's experiments with tables and plots.

``bregman-solvers classify | autoencoder | denoise | anomaly | figures`` (also ``python -m bregman_solvers``).
Defaults finish in a few minutes on 2 cores on the embedded MNIST subset; flags
reproduce the paper's sizes. Every run writes its settings and results as JSON
next to its tables and plots in ``--out``.
"""
import os
import signal
import sys
import threading
import time
import warnings

from . import __version__
from ._cli_anomaly import add_parser as _add_anomaly_parser
from ._cli_figures import add_parser as _add_figures_parser
from ._cli_data import _load
from .datasets import add_gaussian_noise
from .estimators import DenoisingAutoencoder, LiftedBregmanClassifier, SparseAutoencoder
from ._estimator_solvers import _STOCHASTIC
from .exceptions import DivergenceError
from .architectures import architecture
from .network import LiftedNetwork
from .solvers._metric import resolved_metric
from ._cli_args import (_HelpFormatter, _Parser, _momentum, _nonnegative, _positive, _seed, _step, _step_or_auto,
                        _step_or_auto_tau, _sync_every, add_network_options, architecture_options, penalty_growth)
from ._cli_presets import BATCH_SIZE, PRESETS, apply_preset, estimator_settings, lbn_name, model_steps, preset_note
from ._cli_interrupts import _INTERRUPT, _on_interrupt, _partial, _report_interrupt, _stopped
from ._cli_output import (TABLE2_DEFINITION, _accuracy_curves, _cells, _check_resumable, _checkpointing,
                          _energy_curves, _export, _joined, _markdown_table, _plot_curves, _plot_images, _rates,
                          _row_name, _table2, _write_json)


def _fit_reporting_divergence(name, fit):
    """Run ``fit()``; a model whose training diverges is reported, and the run goes on with the others.

    Returns the message of its :class:`~bregman_solvers.exceptions.DivergenceError`, or None. The
    lifted models back off by themselves (their safeguard); this is for the back-propagation
    baselines, whose steps are used as given.
    """
    try:
        fit()
    except DivergenceError as exc:
        print(f"  {name} diverged: {exc}\n  (its row reads 'diverged'; the other models go on)", flush=True)
        return str(exc)
    return None


def _diverged(name, message, seen, histories, t0):
    """The results row of a model that diverged; its history up to its last finished epoch (from
    the checkpointing callback) goes into ``histories`` (the JSON and the plots show it)."""
    row = {"diverged": message, "seconds": time.time() - t0}
    if seen.get("history", {}).get("epoch"):
        histories[name] = seen["history"]
        row["epochs_before_divergence"] = len(seen["history"]["epoch"])
    return row


def _settings(args, command):
    return dict({k: v for k, v in vars(args).items() if k != "func"}, command=command, version=__version__)


# ------------------------------------------------------------------ classify
def _workers(args, params):
    """``params`` of a model with the Dask back end's settings when ``--workers``/``--scheduler`` ask
    for it and the model trains with implicit SGD (the back-propagation baselines stay in-process)."""
    if params.get("solver") != "isgd" or (args.workers is None and args.scheduler is None):
        return params
    return dict(params, n_workers=args.workers, scheduler=args.scheduler, sync_every=args.sync_every)


def _architecture(args):
    """The classifier's ``layers`` (a name, or operators for ``--blocks``) and ``image_shape`` (28x28)."""
    if args.arch == "mlp":
        return {}
    options = architecture_options(args)
    layers = architecture(args.arch, (28, 28, 1), 10, **options) if options else args.arch
    return dict(layers=layers, image_shape=(28, 28, 1))


def _network(args):
    """An untrained network of ``--arch`` (its shapes: the memory estimate, the tables' columns)."""
    return LiftedNetwork.from_architecture(args.arch, (28, 28, 1), 10, dtype=args.dtype, **architecture_options(args))


def _print_memory(est, n_train, args):
    """The auxiliary variables' memory before a lifted fit (the fit refuses what cannot fit)."""
    print(f"  memory: {_network(args).memory_estimate(n_train, args.batch_size)!r}", flush=True)


def classify(args):
    """Table 1 (train/test accuracy) and Table 2 (linear-activation rates) of the paper."""
    _check_resumable(args)
    Xtr, ytr, Xte, yte, mean, data = _load(args)
    # the paper's steps are Euclidean; the library's are in the input metric for a convolutional --arch
    metric = args.theta_metric = args.theta_metric or ("euclidean" if args.preset == "paper" else "auto")
    input_metric = resolved_metric(metric, network := _network(args)) == "input"
    lbn = lbn_name(args, input_metric, args.preset == "library" and resolved_metric("auto", network) == "input")
    growth = penalty_growth(args)            # the lifted models' penalty continuation
    models = {lbn: dict(solver="isgd", penalty="bregman", penalty_growth=growth), "SGD-BP": dict(solver="sgd-bp")}
    slugs = {lbn: "lbn", "SGD-BP": "sgd-bp", "standard lifted network": "classical"}
    if args.classical:
        # the classical lifted network (eq. 7, Zach and Estellers) with our steps, Algorithm 1 from stored variables
        classical = dict(solver="isgd", penalty="classical", aux_start=args.aux_start or "stored",
                         momentum=args.momentum or 0.0, penalty_growth=growth)
        models = {"standard lifted network": classical, **models}
    results, histories, kept = {}, {}, None
    for name, model in models.items():
        print(f"training {name} ...", flush=True)
        steps = model_steps(args, model.get("penalty", "bregman"), "classify")
        est = LiftedBregmanClassifier(**_workers(args, dict(
            estimator_settings(args), hidden_layer_sizes=args.hidden, activation="relu", output=args.output,
            alpha=0.0, theta_metric=metric,                           # the experiments have no weight decay
            **_architecture(args), **model, **steps)))
        if model["solver"] != "sgd-bp":
            _print_memory(est, Xtr.shape[0], args)
        callback, resume, earlier, seen = _checkpointing(args, slugs[name])
        t0 = time.time()
        diverged = _fit_reporting_divergence(name, lambda: est.fit(Xtr, ytr, validation_data=(Xte, yte),
                                                                   callback=callback, resume=resume))
        if diverged:
            results[name] = _diverged(name, diverged, seen, histories, t0)
            continue
        if _INTERRUPT["seen"]:
            history, results[name], kept = _partial(name, est, earlier, args.epochs, t0)
            if history.get("epoch"):
                histories[name] = history
                results[name].update(train_accuracy=history["train_accuracy"][-1],
                                     test_accuracy=history["val_accuracy"][-1], **_rates(est, Xtr, Xte))
            break
        history = histories[name] = _joined(earlier, est.history_)
        results[name] = {
            "train_accuracy": history["train_accuracy"][-1],
            "test_accuracy": history["val_accuracy"][-1],
            **_rates(est, Xtr, Xte), "seconds": time.time() - t0,
        }
        _export(args, est, slugs[name], mean)
    stopped = _stopped(results, models, kept)
    mark = f" (interrupted: {stopped['kept']})" if stopped else ""
    n_hidden = _network(args).n_layers - 1
    table1 = _markdown_table(["model", f"{args.dataset} train", f"{args.dataset} test"],
                             [[_row_name(m, r), *_cells(r, 2, lambda r=r: [f"{100 * r['train_accuracy']:.1f}%",
                                                                           f"{100 * r['test_accuracy']:.1f}%"])]
                              for m, r in results.items()])
    table2 = _table2(results, n_hidden)
    title1 = f"Table 1: classification accuracy{mark}"
    title2 = f"Table 2: linear-activation rates of the hidden layers{mark}"
    with open(os.path.join(args.out, "table1.md"), "w") as f:
        f.write(f"{title1}\n\n{table1}")
    with open(os.path.join(args.out, "table2.md"), "w") as f:
        f.write(f"{title2}\n\n{table2}\n{TABLE2_DEFINITION}\n")
    _write_json(os.path.join(args.out, "results.json"), {"settings": _settings(args, "classify"), "data": data,
                                                        "interrupted": stopped, "table1": results,
                                                        "history": histories})
    _plot_curves(os.path.join(args.out, "accuracy.png"), _accuracy_curves(histories), "accuracy (%)",
                 f"{args.dataset}: train and test accuracy per epoch{' (interrupted)' if stopped else ''}")
    _plot_curves(os.path.join(args.out, "energy.png"), _energy_curves(histories), "energy / loss per sample",
                 f"training energy and loss per epoch{' (interrupted)' if stopped else ''}", logy=True)
    print(f"\n{title1}\n\n{table1}")
    print(f"{title2}\n\n{table2}\n{TABLE2_DEFINITION}\n")
    print(f"results, tables and plots in {args.out}")
    return _report_interrupt(args, stopped)


# ------------------------------------------------------------------ autoencoders
CODE_LAYER = 2          # the autoencoders' code is hidden layer 2 (Section 6.2)


#: The models of each autoencoder command (UAE-*: the undercomplete autoencoder of --code-width)
AE_MODELS = {"autoencoder": ["LBN-S", "LBN-D", "GD-BP", "SGD-BP"],
             "denoise": ["LBN-S", "SGD-BP", "ISGD-BP", "UAE-LBN", "UAE-SGD-BP"]}


def _ae_models(args, n_train, denoise):
    """The models of a run: (estimator class, its parameters) by name."""
    n = args.n_features
    steps_lifted = model_steps(args, "autoencoder", "autoencoder")
    sparse = dict(hidden_layer_sizes=(n, n, n), code_layer=CODE_LAYER, code_threshold=args.threshold,
                  code_alpha=args.alpha, **steps_lifted, **estimator_settings(args))
    if denoise:
        sparse["noise_std"] = args.noise
    models = {"LBN-S": dict(sparse, solver="isgd")}
    if not denoise:
        models["LBN-D"] = dict(sparse, solver="isgd", batch_size=n_train)
        models["GD-BP"] = dict(sparse, solver="gd-bp")
    models["SGD-BP"] = dict(sparse, solver="sgd-bp")
    if denoise:
        models["ISGD-BP"] = dict(sparse, solver="isgd-bp")
        # Section 6's comparison: an undercomplete (narrow code, no sparsity) autoencoder, by LBN and SGD-BP
        undercomplete = dict(sparse, hidden_layer_sizes=(n, args.code_width, n), code_threshold=None, code_alpha=0.0)
        models["UAE-LBN"] = dict(undercomplete, solver="isgd")
        models["UAE-SGD-BP"] = dict(undercomplete, solver="sgd-bp")
    estimator = DenoisingAutoencoder if denoise else SparseAutoencoder
    chosen = args.models or list(models)
    return {name: (estimator, params) for name, params in models.items() if name in chosen}


def _autoencoder(args, denoise):
    _check_resumable(args)
    Xtr, _, Xte, _, mean, data = _load(args)
    args.n_features = Xtr.shape[1]
    inputs_te = add_gaussian_noise(Xte, args.noise, random_state=args.seed + 1) if denoise else Xte
    # the grids of Figures 5, 10 and 12: training images (freshly noised for display) and test images
    inputs_tr = add_gaussian_noise(Xtr[:8], args.noise, random_state=args.seed + 2) if denoise else Xtr[:8]
    results, histories, recon, recon_tr, kept = {}, {}, {}, {}, None
    models = _ae_models(args, Xtr.shape[0], denoise)
    for name, (estimator, params) in models.items():
        print(f"training {name} ...", flush=True)
        est = estimator(**_workers(args, params))
        callback, resume, earlier, seen = _checkpointing(args, name.lower(), params["solver"] in _STOCHASTIC)
        t0 = time.time()
        diverged = _fit_reporting_divergence(name, lambda: est.fit(Xtr, validation_data=Xte, callback=callback,
                                                                   resume=resume))
        if diverged:
            results[name] = _diverged(name, diverged, seen, histories, t0)
            continue
        if _INTERRUPT["seen"]:
            history, results[name], kept = _partial(name, est, earlier, args.epochs, t0)
            if not history.get("epoch"):
                break
        else:
            history = _joined(earlier, est.history_)
        histories[name] = history
        results.setdefault(name, {}).update(
            test_mse=history["val_mse"][-1], test_code_sparsity=history["val_code_sparsity"][-1],
            train_objective=history["train_loss"][-1], seconds=time.time() - t0)
        recon[name], recon_tr[name] = est.predict(inputs_te[:8]), est.predict(inputs_tr)
        if kept:
            break
        _export(args, est, name.lower(), mean)
    del args.n_features
    stopped = _stopped(results, models, kept)
    rows = [[_row_name(m, r), *_cells(r, 2, lambda r=r: [f"{r['test_mse']:.5f}",
                                                          f"{100 * r['test_code_sparsity']:.1f}%"])]
            for m, r in results.items()]
    table = f"{preset_note(args)}\n\n" + _markdown_table(["model", "test reconstruction MSE",
                                                          "test code sparsity"], rows)
    if stopped:
        table = f"Interrupted: {stopped['kept']}\n\n{table}"
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    command = "denoise" if denoise else "autoencoder"
    _write_json(os.path.join(args.out, "results.json"), {"settings": _settings(args, command), "data": data,
                                                        "interrupted": stopped, "results": results,
                                                        "history": histories})
    _plot_curves(os.path.join(args.out, "objective.png"), {m: h["train_loss"] for m, h in histories.items()},
                 "training objective (reconstruction loss)", f"objective per epoch ({args.preset} preset)", logy=True)
    # the paper's validation curves (Figures 6-8): the test images' reconstruction error per epoch
    _plot_curves(os.path.join(args.out, "test_mse.png"), {m: h["val_mse"] for m, h in histories.items()},
                 "test reconstruction MSE", "reconstruction error on the test images per epoch", logy=True)
    # the test images' code sparsity, as the table reports
    _plot_curves(os.path.join(args.out, "sparsity.png"),
                 {m: h["val_code_sparsity"] for m, h in histories.items()}, "code sparsity (test images)",
                 "code sparsity on the test images per epoch")
    labels = ["clean"] + (["noisy"] if denoise else [])
    for name, clean, inputs, images in [("reconstructions.png", Xte, inputs_te, recon),
                                        ("reconstructions_train.png", Xtr, inputs_tr, recon_tr)]:
        head = [clean[:8]] + ([inputs[:8]] if denoise else [])
        _plot_images(os.path.join(args.out, name), head + list(images.values()), labels + list(images), mean)
    print("\n" + table)
    print(f"results, tables and plots in {args.out}")
    return _report_interrupt(args, stopped)


def autoencoder(args):
    """Sparse autoencoders (LBN-S, LBN-D, GD-BP, SGD-BP): Figure 3 curves and Figure 5 reconstructions."""
    return _autoencoder(args, denoise=False)


def denoise(args):
    """Sparse denoising autoencoders (LBN, SGD-BP, ISGD-BP) and an undercomplete one: curves and denoised images."""
    return _autoencoder(args, denoise=True)


# ------------------------------------------------------------------ parser
def build_parser():
    parser = _Parser(prog="bregman-solvers", formatter_class=_HelpFormatter, description="Lifted Bregman "
                     "training: the paper's experiments on MNIST-format data, with tables and plots.")
    parser.add_argument("--version", action="version", version=f"bregman_solvers {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p, command, out):
        p.add_argument("--data-dir", default=None, help="directory with the IDX files (default: "
                       "$BREGMAN_SOLVERS_DATA, else the embedded MNIST subset)")
        p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                       help="the data set the files hold (checked where they are a standard set)")
        sizes = {k: PRESETS[k][command] for k in PRESETS}
        p.add_argument("--preset", choices=list(PRESETS), default="library",
                       help="library: LBN with the library's variant of Algorithm 1 (momentum, forward start, "
                       "auto steps); paper: Algorithm 1 as published (no momentum, stored start, steps 1/L by the "
                       "paper's convexity condition) with the paper's sizes; options given win (docs/cli.rst)")
        for option, key, text in (("--epochs", "epochs", "training epochs"),
                                  ("--n-train", "n_train", "training images (see --subset)"),
                                  ("--n-test", "n_test", "test images (see --subset)")):
            p.add_argument(option, type=_positive, default=None, help=f"{text} (default: {sizes['library'][key]}; "
                           f"{sizes['paper'][key]} with --preset paper)")
        p.add_argument("--subset", choices=["first", "random"], default=None,
                       help=f"which --n-train / --n-test images: the first ones, or a random selection seeded by "
                       f"--seed (default: first; {sizes['paper']['subset']} with --preset paper: the paper's 1K / "
                       f"10K subsets are random, Section 6)")
        p.add_argument("--batch-size", type=_positive, default=BATCH_SIZE, help="batch size of the stochastic solvers")
        paper_k = sizes["paper"]["inner_iterations"] or "30 from --n-train 10000 (Section 6.3), else 10"
        p.add_argument("--inner-iterations", type=_positive, default=None,
                       help=f"K of implicit SGD (default: 10; {paper_k} with --preset paper)")
        p.add_argument("--aux-start", choices=["stored", "forward"], default=None,
                       help="where a batch's auxiliary variables start implicit SGD's K steps: where its last "
                       "visit left them (the paper's Algorithm 1), or the forward pass of the current "
                       "parameters (default: forward for classify, stored for the autoencoders)")
        p.add_argument("--momentum", type=_momentum, default=None,
                       help="inertial step between implicit SGD's batches, in [0, 1) (default: 0.7 for "
                       "classify, 0 for the autoencoders)")
        p.add_argument("--tau-theta", type=_step_or_auto, default=None,
                       help="parameter step of the lifted solvers: a number, 'auto' (the library's rule), "
                       "'lipschitz' (1/L, the paper's) or 'cosine:START:END' (annealed over the epochs) (default: auto for LBN, 0.1 for the classical network and "
                       "the autoencoders; lipschitz with --preset paper)")
        p.add_argument("--tau-x", type=_step_or_auto, default=None, help="auxiliary-variable step of the "
                       "lifted solvers, a number, 'auto', 'lipschitz' or 'cosine:START:END' (default: auto for LBN, i.e. 0.5 for --arch mlp "
                       "and 0.1 for the convolutional ones; 0.1 for the classical network and the autoencoders; "
                       "lipschitz with --preset paper)")
        p.add_argument("--tau", type=_step_or_auto_tau, default=None, help="weight of implicit SGD's proximity "
                       "term, a number or 'auto' (default: auto for LBN, i.e. 10, or 100 in the input metric; 1 for the classical network "
                       "and the autoencoders)")
        p.add_argument("--learning-rate", type=_step, default=None, help="step of the back-propagation "
                       "baselines (default: 0.1 for classify, 0.05 for the autoencoders)")
        p.add_argument("--seed", type=_seed, default=0, help="seed of the initialisation, batches and noise")
        p.add_argument("--threads", type=_positive, default=None, help="the most threads a fit uses, BLAS included (default: the usable cores)")
        p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="computation dtype")
        p.add_argument("--out", default=out, help="output directory")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--export", default=None, metavar="PATH.onnx",
                       help="write each trained model as ONNX (PATH-<model>.onnx; the centring in the graph: "
                       "inputs are pixels in [0, 1]); needs the extra bregman_solvers[onnx]")
        p.add_argument("--workers", type=_positive, default=None, help="train the lifted models data-parallel "
                       "on Dask with this many shards (a local cluster of as many processes, or the workers "
                       "of --scheduler); needs the extra bregman_solvers[distributed]")
        p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (e.g. tcp://host:8786)")
        p.add_argument("--scheduler-timeout", type=_step, default=10.0, metavar="SECONDS",
                       help="seconds to wait for --scheduler to answer before giving up")
        p.add_argument("--checkpoint-every", type=_positive, default=None, metavar="N",
                       help="save each model's checkpoint (and history) in --out every N epochs and after the last "
                       "(models trained by the stochastic solvers; a lifted fit stopped by Ctrl-C saves one anyway)")
        p.add_argument("--resume", action="store_true",
                       help="continue each model from its checkpoint in --out (written by --checkpoint-every or at Ctrl-C); "
                       "models without one train from the start")
        p.add_argument("--sync-every", type=_sync_every, default=None,
                       help="batches per shard between two averagings of the parameters, or 'epoch' "
                       "(default: 20 batches; once per epoch for the model averaging of eq. 23)")

    p = sub.add_parser("demo", help="a short demonstration of the activation kernels (no data needed)",
                       formatter_class=_HelpFormatter)
    p.add_argument("--n-samples", type=_positive, default=10000, help="rows of the random batch")
    p.add_argument("--n-features", type=_positive, default=784, help="columns of the random batch")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="computation dtype")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random batch")
    p.set_defaults(func=_run_demo, out=None)
    p = sub.add_parser("classify", formatter_class=_HelpFormatter,
                       help="Table 1 and Table 2: LBN vs SGD-BP (and the classical lifted network)")
    common(p, "classify", "results/classify")
    add_network_options(p)
    p.set_defaults(func=classify)
    for name, func, help_ in (("autoencoder", autoencoder, "sparse autoencoders: Figure 3 and Figure 5"),
                              ("denoise", denoise, "sparse denoising autoencoders")):
        p = sub.add_parser(name, help=help_, formatter_class=_HelpFormatter)
        common(p, name, f"results/{name}")
        p.add_argument("--alpha", type=_nonnegative, default=0.2, help="l1 weight on the code")
        p.add_argument("--threshold", type=_nonnegative, default=0.1, help="soft-threshold of the code activation")
        names = AE_MODELS["denoise" if name == "denoise" else "autoencoder"]
        p.add_argument("--models", nargs="+", choices=names, default=None, metavar="MODEL",
                       help=f"train only these models (default: all of {', '.join(names)})")
        if name == "denoise":
            p.add_argument("--code-width", type=_positive, default=70, help="the undercomplete autoencoders' "
                           "code width (UAE-LBN, UAE-SGD-BP; 70 in the paper, Section 6)")
            p.add_argument("--noise", type=_nonnegative, default=0.3,
                           help="standard deviation of the Gaussian noise")
        p.set_defaults(func=func)
    _add_anomaly_parser(sub, _HelpFormatter, _positive, _seed)
    _add_figures_parser(sub, _HelpFormatter)
    return parser


def _run_demo(args):
    from ._demo import demo

    return demo(args.n_samples, args.n_features, args.dtype, args.seed)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "preset", None) is not None:
        apply_preset(args)
    if getattr(args, "blocks", None) is not None and args.arch != "resnet":
        return parser.error(f"--blocks is an option of --arch resnet, not of --arch {args.arch}")
    if args.out is not None:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as exc:       # e.g. --out names an existing file
            print(f"bregman-solvers {args.command}: error: --out {args.out!r} cannot be a results directory: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return 2
    if getattr(args, "export", None):
        try:
            from .interop import _import_onnx

            _import_onnx()          # before any training: the error comes first, in one line
            folder = os.path.dirname(os.path.abspath(args.export))
            if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                raise ImportError(f"{folder} is not a folder this process can write to")
        except ImportError as exc:
            print(f"bregman-solvers {args.command}: error: --export: {exc}", file=sys.stderr)
            return 2
    _INTERRUPT["seen"] = False
    watching = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_interrupt) if watching else None
    try:
        with warnings.catch_warnings():
            # an interrupted fit warns that it returns its last completed epoch: the command says so in one line
            warnings.filterwarnings("ignore", message=r"interrupted \(KeyboardInterrupt\)", category=RuntimeWarning)
            return _run(args)
    except (OSError, ValueError, FloatingPointError,  # DivergenceError too; files: FileNotFoundError, ...
            ConnectionError, ImportError) as exc:
        print(f"bregman-solvers {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # outside a fit's epochs (data loading, the end-of-epoch evaluation, tables, plots): stop here
        print(f"bregman-solvers {args.command}: interrupted before the run's results were complete; what was "
              f"written is in {args.out} (checkpoints of --checkpoint-every included)", file=sys.stderr)
        return 130
    finally:
        if watching:
            signal.signal(signal.SIGINT, previous)


def _run(args):
    """The command, with Dask's connect timeout set to ``--scheduler-timeout`` where a scheduler is named."""
    if getattr(args, "scheduler", None) is None:
        return args.func(args)
    from .distributed._cluster import _import_distributed

    _import_distributed()           # a one-line error without the extra bregman_solvers[distributed]
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": f"{args.scheduler_timeout}s"}):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
