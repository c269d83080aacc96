"""Build script for mattezoo's compiled extension, ``mattezoo._C``.

CPU kernels are always built. CUDA kernels are added when a GPU is visible, or
when ``MATTEZOO_CUDA=1`` asks for them (so the ``.cu`` sources can be compiled
on a machine that has nvcc but no GPU). ``MATTEZOO_CUDA=0`` forces a CPU-only
build. Install with ``pip install --no-build-isolation -e .`` after torch, so
that pip does not fetch a second copy of torch into an isolated environment.
"""

import glob
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def _guess_cuda_home() -> None:
    """Point CUDA_HOME at a real toolkit when only a wrapper script is on PATH.

    torch derives CUDA_HOME from the location of `nvcc`; a wrapper such as
    /usr/local/bin/nvcc would give /usr/local, which has no libcudart.
    """
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or os.environ.get("MATTEZOO_CUDA") == "0":
        return
    candidates = []
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    for home in candidates:
        if os.path.isfile(os.path.join(home, "include", "cuda_runtime.h")):
            os.environ["CUDA_HOME"] = home
            return


_guess_cuda_home()

import torch  # noqa: E402  (after CUDA_HOME is settled: cpp_extension reads it at import)
from setuptools import setup  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def _want_cuda() -> bool:
    flag = os.environ.get("MATTEZOO_CUDA", "").strip()
    if flag == "0":
        return False
    if flag == "1":
        if CUDA_HOME is None:
            raise RuntimeError("MATTEZOO_CUDA=1 but no CUDA toolkit was found (set CUDA_HOME or put nvcc on PATH)")
        return True
    if flag:
        raise RuntimeError(f"MATTEZOO_CUDA must be 0 or 1, got {flag!r}")
    return CUDA_HOME is not None and torch.cuda.is_available()


def _sources(pattern: str) -> list[str]:
    # Relative paths keep the build reproducible and the ninja file readable.
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def get_extensions():
    with_cuda = _want_cuda()
    debug = os.environ.get("DEBUG", "0") == "1"
    if with_cuda and not torch.cuda.is_available() and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        # Without a GPU torch cannot pick the arch; default to the H200 we test on.
        os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
    print(
        f"mattezoo build: cuda={with_cuda} DEBUG={int(debug)} "
        f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '')!r} "
        f"MAX_JOBS={os.environ.get('MAX_JOBS', '')!r} torch={torch.__version__}"
    )
    sources = _sources("csrc/*.cpp") + _sources("csrc/ops/*.cpp") + _sources("csrc/ops/cpu/*.cpp")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    # No -std flag: torch picks the standard its headers need (C++20 for 2.14, C++17 for older).
    # at::parallel_for runs serially in code compiled without OpenMP; with it,
    # the extension shares torch's libgomp (same soname, already loaded).
    omp = ["-fopenmp"] if sys.platform.startswith("linux") else []
    extra = {"cxx": opt + omp}
    define_macros = []
    if with_cuda:
        sources += _sources("csrc/cuda/*.cu") + _sources("csrc/ops/cuda/*.cu")
        extra["nvcc"] = opt + ["-lineinfo", "--expt-relaxed-constexpr"]
        define_macros.append(("MATTEZOO_WITH_CUDA", None))
        ext_cls = CUDAExtension
    else:
        ext_cls = CppExtension
    return [
        ext_cls(
            "mattezoo._C",
            sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=define_macros,
            extra_compile_args=extra,
            extra_link_args=omp,
        )
    ]


setup(
    ext_modules=get_extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
