/*
 * cxx_peers.h - the C face of the C++ peers of bench_queue and bench_stack:
 * moodycamel::ConcurrentQueue (moodycamel.cpp) and Boost.Lockfree's queue and
 * stack (boost_lockfree.cpp).  Each adapter is a few lines of C++ compiled
 * with the C++ compiler; the bench's C code only sees these functions.  A
 * peer whose header is missing is not compiled; meson then defines
 * BENCH_<PEER>_MISSING to the reason instead of BENCH_HAVE_<PEER>.
 */
#ifndef CONC_BENCH_CXX_PEERS_H
#define CONC_BENCH_CXX_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* moodycamel::ConcurrentQueue<uintptr_t> */
void *mc_create(void);
void mc_destroy(void *q);
bool mc_push(void *q, uintptr_t v);
bool mc_pop(void *q, uintptr_t *v);
/* A thread's producer and consumer tokens (the thread gets both: the
 * harness's thread_enter does not say which role it has). */
void *mc_tokens_new(void *q);
void mc_tokens_free(void *t);
bool mc_push_tok(void *q, void *t, uintptr_t v);
bool mc_pop_tok(void *q, void *t, uintptr_t *v);
/* enqueue_bulk / try_dequeue_bulk of up to n items, with the tokens */
bool mc_push_bulk(void *q, void *t, const uintptr_t *v, size_t n);
size_t mc_pop_bulk(void *q, void *t, uintptr_t *v, size_t max);

/* boost::lockfree::queue<void *> (fixed_sized<false>) and stack<void *> */
void *bq_create(void);
void bq_destroy(void *q);
bool bq_push(void *q, uintptr_t v);
bool bq_pop(void *q, uintptr_t *v);
void *bs_create(void);
void bs_destroy(void *s);
bool bs_push(void *s, uintptr_t v);
bool bs_pop(void *s, uintptr_t *v);

/* oneTBB (tbb.cpp): a task_arena of `threads` (the calling thread takes
 * one of its slots), and in it: `groups` task_groups in turn, each running
 * fn(arg) `tasks` times and waiting; fib(n) by parallel_invoke, no cutoff;
 * the sum of 2e over [0, n) by parallel_reduce (auto_partitioner). */
void *tbb_arena_new(unsigned threads);
void tbb_arena_free(void *arena);
void tbb_groups(void *arena, unsigned groups, unsigned tasks, void (*fn)(void *), void *arg);
uint64_t tbb_fib(void *arena, unsigned n);
uint64_t tbb_sum2e(void *arena, uint64_t n);
/* W5 map: out[e] = the bench's map_f(e) over [0, n), parallel_for. */
void tbb_map(void *arena, uint64_t *out, uint64_t n);

/* rayon (peers/rayon, a Rust staticlib): the same three on a rayon
 * ThreadPool of `threads` workers (the caller blocks, it does not work). */
void *rayon_pool_new(unsigned threads);
void rayon_pool_free(void *pool);
void rayon_scope_groups(void *pool, unsigned groups, unsigned tasks, void (*fn)(void *), void *arg);
uint64_t rayon_fib(void *pool, unsigned n);
uint64_t rayon_sum2e(void *pool, uint64_t n);
void rayon_map(void *pool, uint64_t *out, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif
