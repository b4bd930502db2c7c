/*
 * epoch_peers.h - the read-side and reclamation peers of bench_epoch.
 *
 * liburcu's flavours each remap rcu_read_lock & co. with macros, so each
 * lives in a translation unit of its own (peers/urcu_memb.c, peers/urcu_mb.c)
 * and is built with _LGPL_SOURCE: the inline fast paths a C programmer who
 * cares about speed would use.
 */
#ifndef BENCH_EPOCH_PEERS_H
#define BENCH_EPOCH_PEERS_H

/* Per thread: register, then n read_lock/read_unlock pairs, then unregister;
 * returns the seconds the loop took. */
double urcu_memb_pairs(unsigned long n);
double urcu_mb_pairs(unsigned long n);

/* Per thread: n objects allocated and handed to call_rcu; returns the
 * seconds for the loop.  urcu_memb_reclaim_finish() waits for every
 * callback (rcu_barrier) and returns how many ran since the last call. */
double urcu_memb_retire(unsigned long n);
unsigned long urcu_memb_reclaim_finish(void);

#endif
