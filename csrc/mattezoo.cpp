// Entry point of mattezoo._C.
//
// The module object itself is empty: importing it runs the static
// TORCH_LIBRARY registrations of every op in csrc/ops, after which the ops are
// reachable as torch.ops.mattezoo.<name>. The schema of each op lives next to
// its arguments checks in csrc/ops/<op>.cpp; kernels live in csrc/ops/cpu and
// csrc/ops/cuda, one TORCH_LIBRARY_IMPL per backend.
#include <Python.h>
#include <torch/library.h>

#ifdef MATTEZOO_WITH_CUDA
int mattezoo_cuda_runtime_version();  // csrc/cuda/cuda_version.cu
#endif

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "mattezoo compiled ops (see torch.ops.mattezoo)", -1, nullptr};
  return PyModule_Create(&module_def);
}
}

namespace {
// The CUDA runtime version the extension was built against, or -1 for a
// CPU-only build. Python's has_cuda_ops() asks this rather than guessing.
int64_t cuda_version() {
#ifdef MATTEZOO_WITH_CUDA
  return mattezoo_cuda_runtime_version();
#else
  return -1;
#endif
}
}  // namespace

TORCH_LIBRARY(mattezoo, m) {
  m.def("_cuda_version() -> int", &cuda_version);
}
