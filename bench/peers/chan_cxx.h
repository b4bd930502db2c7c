/*
 * chan_cxx.h - the C face of bench_chan's C++ peers (chan_cxx.cpp): oneTBB
 * concurrent_bounded_queue and moodycamel::BlockingConcurrentQueue.  Each
 * *_w7a runs the whole workload and returns its seconds (negative: wrong
 * result); the *_idle_* calls let the bench block one receiver and measure
 * its CPU time.
 */
#ifndef CONC_BENCH_CHAN_CXX_H
#define CONC_BENCH_CHAN_CXX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

double tbb_w7a(unsigned p, uint64_t n, uint64_t cap); /* cap UINT64_MAX: unbounded */
void *tbb_idle_new(void);
void tbb_idle_pop(void *q);
void tbb_idle_push(void *q);
void tbb_idle_free(void *q);

double mcb_w7a(unsigned p, uint64_t n); /* unbounded */
void *mcb_idle_new(void);
void mcb_idle_pop(void *q);
void mcb_idle_push(void *q);
void mcb_idle_free(void *q);

#ifdef __cplusplus
}
#endif

#endif
