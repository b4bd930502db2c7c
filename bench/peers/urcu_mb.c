#define _LGPL_SOURCE
#include <urcu/urcu-mb.h>

#include "../harness.h"
#include "epoch_peers.h"

double urcu_mb_pairs(unsigned long n)
{
	urcu_mb_register_thread();
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		urcu_mb_read_lock();
		urcu_mb_read_unlock();
	}
	double t1 = bench_now();
	urcu_mb_unregister_thread();
	return t1 - t0;
}
