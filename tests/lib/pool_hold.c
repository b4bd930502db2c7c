/* pool_hold.c - holding a pool's workers busy (pool_hold.h). */
#include "pool_hold.h"

#include <sched.h>

#include "testutil.h"

atomic_int conc_test_hold_gate;
atomic_ulong conc_test_hold_in;

void conc_test_hold_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&conc_test_hold_in, 1);
	while (!atomic_load(&conc_test_hold_gate))
		sched_yield();
}

void conc_test_hold_one_worker(conc_pool *p)
{
	atomic_store(&conc_test_hold_gate, 0);
	atomic_store(&conc_test_hold_in, 0);
	assert_int_equal(conc_pool_execute(p, conc_test_hold_task, NULL), 0);
	while (atomic_load(&conc_test_hold_in) < 1)
		sched_yield();
}
