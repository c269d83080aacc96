// See huge_page_empty.h.
#include "ops/cpu/huge_page_empty.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/CPUAllocator.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#define MZ_HAVE_THP 1
#else
#define MZ_HAVE_THP 0
#endif

namespace mattezoo::ops {
namespace {

bool huge_pages_enabled() {
  // Read per call (a getenv is nothing next to a 4 MB allocation) so that
  // benchmarks and tests can compare both settings in one process.
  const char* env = std::getenv("MATTEZOO_HUGE_PAGES");
  return MZ_HAVE_THP && !(env != nullptr && std::strcmp(env, "0") == 0);
}

#if MZ_HAVE_THP
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kDefaultCacheBytes = size_t{512} << 20;

struct Mapping {
  void* base;
  size_t length;
};

size_t cache_limit() {
  const char* env = std::getenv("MATTEZOO_OUTPUT_CACHE_MB");
  if (env == nullptr || env[0] == '\0') return kDefaultCacheBytes;
  return static_cast<size_t>(std::strtoull(env, nullptr, 10)) << 20;
}

void release(void* context);

// Maps whole, 2 MiB-aligned huge pages (a hint: the kernel may still use
// small pages) and keeps up to cache_limit() bytes of freed mappings for the
// next output of the same rounded size, newest kept, oldest unmapped first.
// Why keep them: the VM's balloon reports freed 2 MiB blocks to the host,
// which drops them, so a fresh mapping faults in from the host again (we
// measured 0.1-2.7 s for 256 MB); a kept one is written at memory speed.
// Falls back to torch's allocator when the kernel refuses a mapping.
class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    const size_t length = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
    if (length == 0) return c10::GetCPUAllocator()->allocate(nbytes);
    void* base = take_cached(length);
    if (base == nullptr) base = map(length);
    if (base == nullptr) return c10::GetCPUAllocator()->allocate(nbytes);
    return {base, new Mapping{base, length}, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }  // context differs from data

  void copy_data(void* dest, const void* src, size_t count) const override { std::memcpy(dest, src, count); }

  // Keeps the freed mapping as the newest entry and unmaps the oldest ones
  // beyond the limit: the sizes a model just used are the ones it asks next.
  void give_back(const Mapping& m) {
    const size_t limit = cache_limit();
    std::vector<Mapping> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cache_.push_back(m);
      cached_bytes_ += m.length;
      size_t drop = 0;
      while (cached_bytes_ > limit && drop < cache_.size()) cached_bytes_ -= cache_[drop++].length;
      evicted.assign(cache_.begin(), cache_.begin() + drop);
      cache_.erase(cache_.begin(), cache_.begin() + drop);
    }
    for (const Mapping& e : evicted) munmap(e.base, e.length);
  }

 private:
  void* take_cached(size_t length) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = cache_.size(); i-- > 0;) {  // newest first
      if (cache_[i].length != length) continue;
      void* base = cache_[i].base;
      cached_bytes_ -= length;
      cache_.erase(cache_.begin() + static_cast<std::ptrdiff_t>(i));
      return base;
    }
    return nullptr;
  }

  static void* map(size_t length) {
    void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (aligned > start) munmap(raw, aligned - start);
    const size_t tail = kHugePage - (aligned - start);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + length), tail);
    void* base = reinterpret_cast<void*>(aligned);
    madvise(base, length, MADV_HUGEPAGE);  // advisory: small pages still work if it fails
    return base;
  }

  std::mutex mutex_;
  std::vector<Mapping> cache_;
  size_t cached_bytes_ = 0;
};

// Never destroyed: tensors may outlive static destructors at exit.
HugePageAllocator& huge_page_allocator() {
  static auto* allocator = new HugePageAllocator;
  return *allocator;
}

void release(void* context) {
  auto* m = static_cast<Mapping*>(context);
  huge_page_allocator().give_back(*m);
  delete m;
}
#endif

}  // namespace

at::Tensor empty_huge_page_backed(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat fmt) {
  TORCH_INTERNAL_ASSERT(options.device().is_cpu(), "empty_huge_page_backed: CPU tensors only");
  const at::TensorOptions opts = options.memory_format(fmt);
#if MZ_HAVE_THP
  const size_t nbytes = at::detail::computeStorageNbytesContiguous(sizes, options.dtype().itemsize());
  if (nbytes >= kHugePageMinBytes && huge_pages_enabled()) {
    return at::detail::empty_generic(sizes, &huge_page_allocator(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                     c10::typeMetaToScalarType(options.dtype()), fmt);
  }
#endif
  return at::empty(sizes, opts);
}

}  // namespace mattezoo::ops
