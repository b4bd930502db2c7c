// algo_tbb.cpp - oneTBB's parallel_sort and parallel_scan for bench_algo
// (algo_peers.h), each run inside a task_arena of the row's thread count.
#include <oneapi/tbb/parallel_scan.h>
#include <oneapi/tbb/parallel_sort.h>
#include <oneapi/tbb/task_arena.h>

#include "algo_peers.h"

void *tbb_arena_new(unsigned threads)
{
	auto *a = new tbb::task_arena(static_cast<int>(threads));
	a->initialize();
	return a;
}

void tbb_arena_free(void *arena)
{
	delete static_cast<tbb::task_arena *>(arena);
}

void tbb_sort_u64(void *arena, uint64_t *a, size_t n)
{
	static_cast<tbb::task_arena *>(arena)->execute([&] { tbb::parallel_sort(a, a + n); });
}

void tbb_sort_u64_fn(void *arena, uint64_t *a, size_t n, algo_cmp_fn cmp)
{
	static_cast<tbb::task_arena *>(arena)->execute([&] {
		tbb::parallel_sort(a, a + n, [cmp](const uint64_t &x, const uint64_t &y) {
			return cmp(&x, &y, nullptr) < 0;
		});
	});
}

// Inclusive prefix sum in place, the reference's body (tbb's documented
// pattern: the pre-scan pass only sums, the final pass stores).
void tbb_scan_u64(void *arena, uint64_t *a, size_t n)
{
	static_cast<tbb::task_arena *>(arena)->execute([&] {
		tbb::parallel_scan(
			tbb::blocked_range<size_t>(0, n), uint64_t(0),
			[a](const tbb::blocked_range<size_t> &r, uint64_t sum, bool is_final) {
				for (size_t i = r.begin(); i < r.end(); i++) {
					sum += a[i];
					if (is_final)
						a[i] = sum;
				}
				return sum;
			},
			[](uint64_t x, uint64_t y) { return x + y; });
	});
}
