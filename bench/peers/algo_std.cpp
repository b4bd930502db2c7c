// algo_std.cpp - std::sort and std::stable_sort for bench_algo (algo_peers.h):
// with the compare inlined (std::less, a lambda on the key) and through the
// same C function pointer libconc's comparator sort gets.
#include <algorithm>

#include "algo_peers.h"

void std_sort_u64(uint64_t *a, size_t n)
{
	std::sort(a, a + n);
}

void std_sort_u64_fn(uint64_t *a, size_t n, algo_cmp_fn cmp)
{
	std::sort(a, a + n, [cmp](const uint64_t &x, const uint64_t &y) { return cmp(&x, &y, nullptr) < 0; });
}

void std_stable_sort_rec(struct algo_rec *a, size_t n)
{
	std::stable_sort(a, a + n, [](const algo_rec &x, const algo_rec &y) { return x.key < y.key; });
}

void std_stable_sort_rec_fn(struct algo_rec *a, size_t n, algo_cmp_fn cmp)
{
	std::stable_sort(a, a + n,
			 [cmp](const algo_rec &x, const algo_rec &y) { return cmp(&x, &y, nullptr) < 0; });
}
