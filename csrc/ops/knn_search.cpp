// Schema of mattezoo::knn_search, exact k-nearest-neighbour search with a
// KD-tree (CPU kernel: csrc/ops/cpu/knn_search_kernel.cpp; Python wrapper:
// mattezoo/classical/knn_search.py).
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(mattezoo, m) {
  // data: [N,D] float32, queries: [M,D] float32, 1 <= D <= 8, 1 <= k <= N.
  // Returns the indices into data of each query's k nearest points, nearest
  // first, and their squared Euclidean distances (both [M,k]).
  m.def("knn_search(Tensor data, Tensor queries, int k, int leaf_size=12) -> (Tensor indices, Tensor sqdist)");
}
