#define _LGPL_SOURCE
#include <stdatomic.h>
#include <stdlib.h>
#include <urcu/urcu-memb.h>

#include "../harness.h"
#include "epoch_peers.h"

double urcu_memb_pairs(unsigned long n)
{
	urcu_memb_register_thread();
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		urcu_memb_read_lock();
		urcu_memb_read_unlock();
	}
	double t1 = bench_now();
	urcu_memb_unregister_thread();
	return t1 - t0;
}

struct robj {
	struct rcu_head head;
	unsigned long v;
};

static atomic_ulong reclaimed;

static void robj_free(struct rcu_head *h)
{
	free(caa_container_of(h, struct robj, head));
	atomic_fetch_add_explicit(&reclaimed, 1, memory_order_relaxed);
}

double urcu_memb_retire(unsigned long n)
{
	urcu_memb_register_thread();
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		struct robj *o = malloc(sizeof *o);
		o->v = i;
		urcu_memb_call_rcu(&o->head, robj_free);
	}
	double t1 = bench_now();
	urcu_memb_unregister_thread();
	return t1 - t0;
}

unsigned long urcu_memb_reclaim_finish(void)
{
	urcu_memb_register_thread();
	urcu_memb_barrier();
	urcu_memb_unregister_thread();
	return atomic_exchange(&reclaimed, 0);
}
