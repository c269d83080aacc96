#include <cuda_runtime_api.h>

// Reported through torch.ops.mattezoo._cuda_version (csrc/mattezoo.cpp).
int mattezoo_cuda_runtime_version() { return CUDART_VERSION; }
