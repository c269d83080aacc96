// Uninitialised CPU outputs backed by transparent huge pages when they are large.
//
// Why: a fresh multi-megabyte tensor comes from mmap, and the first write to
// each 4 KiB page traps into the kernel, which zeroes the page. On the 2-core
// CI VM that costs more than the op itself: writing a fresh 256 MB output
// (P3M-Net's last unpool) took 298 ms in 4 KiB pages and 44 ms in 2 MiB
// pages, against 29 ms into memory already mapped (benchmarks/README.md).
// torch's own allocator does the same only when THP_MEM_ALLOC_ENABLE=1 is set.
// Worse, the VM's balloon hands freed 2 MiB blocks back to the host, so a
// fresh mapping can fault in from the host (0.1-2.7 s for 256 MB measured):
// freed outputs are therefore kept (up to MATTEZOO_OUTPUT_CACHE_MB, default
// 512; 0 keeps none) and reused for the next output of the same size.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/MemoryFormat.h>
#include <c10/core/TensorOptions.h>

namespace mattezoo::ops {

// Outputs smaller than this keep torch's allocator (malloc's arenas reuse them).
constexpr size_t kHugePageMinBytes = size_t{4} << 20;

// at::empty(sizes, options.memory_format(fmt)) on CPU, except that storage of
// at least kHugePageMinBytes is mapped 2 MiB-aligned with MADV_HUGEPAGE
// (Linux). MATTEZOO_HUGE_PAGES=0 in the environment turns that off; so does
// any failure to map, which falls back to torch's allocator.
at::Tensor empty_huge_page_backed(at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat fmt);

}  // namespace mattezoo::ops
