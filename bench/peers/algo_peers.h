/*
 * algo_peers.h - the C face of bench_algo's C++ and Rust peers: the C++
 * standard library's std::sort and std::stable_sort (algo_std.cpp), oneTBB's
 * parallel_sort and parallel_scan in a task_arena of the row's thread count
 * (algo_tbb.cpp), rayon's par_sort_unstable and par_sort_by_key in a rayon
 * pool (rayon_sort/).  A peer that cannot be built is not compiled; meson
 * then defines BENCH_<PEER>_MISSING to the reason instead of BENCH_HAVE_<PEER>.
 */
#ifndef CONC_BENCH_ALGO_PEERS_H
#define CONC_BENCH_ALGO_PEERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*algo_cmp_fn)(const void *a, const void *b, void *ctx);

struct algo_rec {
	uint64_t key, idx;
};

/* C++ standard library (serial) */
void std_sort_u64(uint64_t *a, size_t n);
void std_sort_u64_fn(uint64_t *a, size_t n, algo_cmp_fn cmp);
void std_stable_sort_rec(struct algo_rec *a, size_t n);
void std_stable_sort_rec_fn(struct algo_rec *a, size_t n, algo_cmp_fn cmp);

/* oneTBB: an arena of `threads` threads; the calls run inside it */
void *tbb_arena_new(unsigned threads);
void tbb_arena_free(void *arena);
void tbb_sort_u64(void *arena, uint64_t *a, size_t n);
void tbb_sort_u64_fn(void *arena, uint64_t *a, size_t n, algo_cmp_fn cmp);
void tbb_scan_u64(void *arena, uint64_t *a, size_t n);

/* rayon */
void *rs_pool_new(size_t threads);
void rs_pool_free(void *pool);
void rs_par_sort_unstable_u64(const void *pool, uint64_t *a, size_t n);
void rs_par_sort_u64(const void *pool, uint64_t *a, size_t n);
void rs_par_sort_unstable_by_u64(const void *pool, uint64_t *a, size_t n, algo_cmp_fn cmp);
void rs_par_sort_rec(const void *pool, struct algo_rec *a, size_t n);
void rs_par_sort_rec_by(const void *pool, struct algo_rec *a, size_t n, algo_cmp_fn cmp);

#ifdef __cplusplus
}
#endif

#endif
