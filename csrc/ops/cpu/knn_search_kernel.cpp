// CPU kernel of mattezoo::knn_search: an exact KD-tree (schema: csrc/ops/knn_search.cpp).
//
// The tree splits at the median of the widest dimension, so it is balanced
// and its leaves hold at most leaf_size points, copied contiguously in tree
// order. Queries descend to the nearer child first and visit a far child only
// while the lower bound of the squared distance to its cell (kept
// incrementally per dimension, Arya & Mount 1993) beats the current k-th best
// distance. Queries run in parallel; the tree is read-only by then.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace {

struct Node {
  int32_t dim;        // split dimension, -1 for a leaf
  float split;        // split value
  int32_t left, right;  // children (inner nodes)
  int64_t lo, hi;     // point range in tree order (leaves)
};

template <int D>
class KdTree {
 public:
  KdTree(const float* data, int64_t n, int64_t leaf_size) : leaf_size_(std::max<int64_t>(leaf_size, 1)) {
    order_.resize(n);
    for (int64_t i = 0; i < n; ++i) order_[i] = i;
    nodes_.reserve(2 * (n / leaf_size_ + 1));
    build(data, 0, n);
    points_.resize(n * D);
    for (int64_t i = 0; i < n; ++i)
      for (int d = 0; d < D; ++d) points_[i * D + d] = data[order_[i] * D + d];
  }

  // Original index of the i-th point in tree order (leaf by leaf).
  int64_t point_at(int64_t i) const { return order_[i]; }

  // The k nearest points of q, ascending: squared distances and original indices.
  void query(const float* q, int64_t k, float* best_d, int64_t* best_i) const {
    std::fill(best_d, best_d + k, std::numeric_limits<float>::infinity());
    std::fill(best_i, best_i + k, int64_t{-1});
    float offset[D] = {};
    search(0, q, 0.0f, offset, k, best_d, best_i);
  }

 private:
  int32_t build(const float* data, int64_t lo, int64_t hi) {
    const int32_t id = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(Node{-1, 0.0f, -1, -1, lo, hi});
    if (hi - lo <= leaf_size_) return id;
    float mn[D], mx[D];
    for (int d = 0; d < D; ++d) mn[d] = mx[d] = data[order_[lo] * D + d];
    for (int64_t i = lo + 1; i < hi; ++i)
      for (int d = 0; d < D; ++d) {
        const float v = data[order_[i] * D + d];
        mn[d] = std::min(mn[d], v), mx[d] = std::max(mx[d], v);
      }
    int dim = 0;
    for (int d = 1; d < D; ++d)
      if (mx[d] - mn[d] > mx[dim] - mn[dim]) dim = d;
    if (mx[dim] == mn[dim]) return id;  // all points equal: keep them in one leaf
    const int64_t mid = lo + (hi - lo) / 2;
    std::nth_element(order_.begin() + lo, order_.begin() + mid, order_.begin() + hi,
                     [&](int64_t a, int64_t b) { return data[a * D + dim] < data[b * D + dim]; });
    const float split = data[order_[mid] * D + dim];
    const int32_t left = build(data, lo, mid);
    const int32_t right = build(data, mid, hi);
    nodes_[id] = Node{dim, split, left, right, lo, hi};
    return id;
  }

  void search(int32_t id, const float* q, float bound, float* offset, int64_t k, float* best_d, int64_t* best_i) const {
    const Node& node = nodes_[id];
    if (node.dim < 0) {
      for (int64_t p = node.lo; p < node.hi; ++p) {
        const float* x = points_.data() + p * D;
        float dist = 0.0f;
        for (int d = 0; d < D; ++d) {
          const float t = x[d] - q[d];
          dist += t * t;
        }
        if (dist < best_d[k - 1]) {
          int64_t s = k - 1;  // insertion into the sorted list
          while (s > 0 && best_d[s - 1] > dist) best_d[s] = best_d[s - 1], best_i[s] = best_i[s - 1], --s;
          best_d[s] = dist, best_i[s] = order_[p];
        }
      }
      return;
    }
    const float diff = q[node.dim] - node.split;
    const int32_t near = diff < 0 ? node.left : node.right;
    const int32_t far = diff < 0 ? node.right : node.left;
    search(near, q, bound, offset, k, best_d, best_i);
    const float old = offset[node.dim];
    const float far_bound = bound - old * old + diff * diff;
    if (far_bound < best_d[k - 1]) {
      offset[node.dim] = diff;
      search(far, q, far_bound, offset, k, best_d, best_i);
      offset[node.dim] = old;
    }
  }

  int64_t leaf_size_;
  std::vector<int64_t> order_;
  std::vector<float> points_;
  std::vector<Node> nodes_;
};

template <int D>
void run_search(const float* data, int64_t n, const float* queries, int64_t m, int64_t k, int64_t leaf_size,
                int64_t* indices, float* sqdist) {
  const KdTree<D> tree(data, n, leaf_size);
  // When the queries are the data points, answer them in tree order:
  // consecutive queries are then neighbours and walk the same, cached leaves.
  const bool self_query = queries == data && m == n;
  at::parallel_for(0, m, 512, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i = self_query ? tree.point_at(t) : t;
      tree.query(queries + i * D, k, sqdist + i * k, indices + i * k);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> knn_search_cpu(const at::Tensor& data_in, const at::Tensor& queries_in, int64_t k,
                                                  int64_t leaf_size) {
  TORCH_CHECK(data_in.dim() == 2 && queries_in.dim() == 2, "knn_search: data and queries must be [N,D] and [M,D]");
  const int64_t n = data_in.size(0), dims = data_in.size(1), m = queries_in.size(0);
  TORCH_CHECK(queries_in.size(1) == dims, "knn_search: queries have ", queries_in.size(1), " dimensions, data ", dims);
  TORCH_CHECK(dims >= 1 && dims <= 8, "knn_search: 1 to 8 dimensions are supported, got ", dims);
  TORCH_CHECK(k >= 1 && k <= n, "knn_search: k must be in [1, ", n, "], got ", k);
  const auto data = data_in.to(at::kFloat).contiguous();
  const auto queries = queries_in.is_same(data_in) ? data : queries_in.to(at::kFloat).contiguous();
  auto indices = at::empty({m, k}, at::kLong);
  auto sqdist = at::empty({m, k}, at::kFloat);
  const float* d = data.data_ptr<float>();
  const float* q = queries.data_ptr<float>();
  int64_t* out_i = indices.data_ptr<int64_t>();
  float* out_d = sqdist.data_ptr<float>();
  switch (dims) {
    case 1: run_search<1>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 2: run_search<2>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 3: run_search<3>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 4: run_search<4>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 5: run_search<5>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 6: run_search<6>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    case 7: run_search<7>(d, n, q, m, k, leaf_size, out_i, out_d); break;
    default: run_search<8>(d, n, q, m, k, leaf_size, out_i, out_d); break;
  }
  return {indices, sqdist};
}

}  // namespace

TORCH_LIBRARY_IMPL(mattezoo, CPU, m) {
  m.impl("knn_search", &knn_search_cpu);
}
