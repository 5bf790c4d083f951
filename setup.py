"""Build the Cython kernels, with OpenMP when the compiler supports it.

When the compiler cannot build an OpenMP program the kernels are compiled
serially: everything still works, ``bregman_solvers.show_config()`` reports
``openmp: False`` and a warning is printed here.
"""
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _openmp_flags(compiler):
    """Return (compile_args, link_args) enabling OpenMP, or None if unsupported."""
    if os.environ.get("BREGMAN_SOLVERS_NO_OPENMP"):
        return None
    if sys.platform == "win32":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as f:
            f.write(OPENMP_TEST)
        for cflags, lflags in candidates:
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objs, "omp_test", output_dir=tmp, extra_postargs=lflags)
                subprocess.run([os.path.join(tmp, "omp_test")], check=True)
                return cflags, lflags
            except Exception:  # noqa: BLE001 - any failure means "no OpenMP"
                continue
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


def _build_jobs():
    """Parallel jobs of the build: ``BREGMAN_SOLVERS_BUILD_JOBS``, else the usable cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(os.environ.get("BREGMAN_SOLVERS_BUILD_JOBS", "0")) or cores


class BuildExtWithOpenMP(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:           # the extensions compiled side by side (pip passes no -j)
            self.parallel = _build_jobs()

    def build_extensions(self):
        flags = _openmp_flags(self.compiler)
        if flags is None:
            warnings.warn(
                "bregman_solvers: the C compiler does not support OpenMP; building the "
                "kernels SERIALLY (n_threads has no effect). Install an OpenMP-capable "
                "compiler (gcc, or clang with libomp) for parallel kernels.",
                stacklevel=1,
            )
            print("*** WARNING: building bregman_solvers without OpenMP ***", file=sys.stderr)
        for ext in self.extensions:
            if flags is not None and ext.name.rsplit(".", 1)[-1] not in SERIAL_KERNELS:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        super().build_extensions()


KERNEL_DIR = os.path.join("bregman_solvers", "_kernels")


def render_templates():
    """Render the Tempita templates (``*.tp``) of the kernels with the activation table.

    ``_rows.pxd.tp`` becomes ``_rows.pxd``: the activation codes, tags and dispatch
    generated from ``activation_table.ACTIVATIONS`` (read without importing the package,
    which is not built yet). A file is rewritten only when its text changes, so an
    unchanged table recompiles nothing.
    """
    from Cython import Tempita

    table = runpy.run_path(os.path.join(KERNEL_DIR, "activation_table.py"))
    for name in sorted(os.listdir(KERNEL_DIR)):
        if not name.endswith(".tp"):
            continue
        source = os.path.join(KERNEL_DIR, name)
        with open(source) as f:
            text = Tempita.sub(f.read(), ACTIVATIONS=table["ACTIVATIONS"])
        target = source[:-3]
        if not os.path.exists(target) or open(target).read() != text:
            with open(target, "w") as f:
                f.write(text)


def _extension(name):
    base = os.path.join("bregman_solvers", "_kernels")
    extra = [] if sys.platform == "win32" else ["-O3", "-fno-math-errno", "-fno-trapping-math",
             "-fno-signed-zeros", "-Wno-unused-function"]
    return Extension(
        f"bregman_solvers._kernels.{name}",
        [os.path.join(base, f"{name}.pyx")],
        include_dirs=[np.get_include(), base],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        extra_compile_args=list(extra),
    )


KERNELS = ["_openmp", "_activations", "_lifted", "_steps", "_conv", "_pause"]
#: Built without OpenMP: ``_pause`` is imported before the OpenMP runtime may load (``_runtime.py``).
SERIAL_KERNELS = ["_pause"]

render_templates()

setup(
    ext_modules=cythonize(
        [_extension(name) for name in KERNELS],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        nthreads=_build_jobs() if sys.platform != "win32" else 0,    # Cython's C generation, in parallel too
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
