// See huge_page_empty.h.
#include "ops/cpu/huge_page_empty.h"

#include <ATen/EmptyTensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/CPUAllocator.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

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

struct Mapping {
  void* base;
  size_t length;
};

void unmap(void* context) {
  auto* m = static_cast<Mapping*>(context);
  munmap(m->base, m->length);
  delete m;
}

// Maps whole, 2 MiB-aligned huge pages (a hint: the kernel may still use
// small pages) and trims the alignment slack; falls back to torch's
// allocator when the kernel says no.
class HugePageAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    const size_t length = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
    if (length == 0) return c10::GetCPUAllocator()->allocate(nbytes);
    void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return c10::GetCPUAllocator()->allocate(nbytes);
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (aligned > start) munmap(raw, aligned - start);
    const size_t tail = kHugePage - (aligned - start);
    if (tail > 0) munmap(reinterpret_cast<void*>(aligned + length), tail);
    void* base = reinterpret_cast<void*>(aligned);
    madvise(base, length, MADV_HUGEPAGE);  // advisory: small pages still work if it fails
    return {base, new Mapping{base, length}, &unmap, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }  // context differs from data

  void copy_data(void* dest, const void* src, size_t count) const override { std::memcpy(dest, src, count); }
};

HugePageAllocator& huge_page_allocator() {
  static HugePageAllocator allocator;
  return allocator;
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
