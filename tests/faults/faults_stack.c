/*
 * faults_stack.c - the faults suite (issue 8, tests/lib/faults.h): conc/stack.h.
 * Create, push (also from a thread-exit destructor) and the pops
 * swept; producers and consumers with 2%, 25% and 90% of the
 * allocations failing.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "faults.h"

#include "queue/queue_internal.h"
#include "stack/stack_internal.h"
#include "pool/pool_internal.h"
#include "scope/scope_internal.h"

static void run_stack_create(struct sweep *sw, bool in)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	conc_stack *s = SENTINEL;
	arm(sw);
	int err = in ? conc_stack_create_in(&s, d) : conc_stack_create(&s);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, s == SENTINEL);
		CHECK(sw, conc_stack_create_in(&s, d) == 0);
	}
	void *x = NULL;
	CHECK(sw, conc_stack_push(s, ITEM(7)) == 0);
	CHECK(sw, conc_stack_try_pop(s, &x) && x == ITEM(7));
	conc_stack_destroy(s, NULL);
	check_destroy_domain(sw, d);
}

static void run_stack_create_global(struct sweep *sw)
{
	run_stack_create(sw, false);
}

static void run_stack_create_in(struct sweep *sw)
{
	run_stack_create(sw, true);
}

/* Pop everything: the items must be want[0..n) from the top down. */
static void check_stack_holds(struct sweep *sw, conc_stack *s, const uintptr_t *want,
			      unsigned n)
{
	void *x;
	for (unsigned i = 0; i < n; i++) {
		bool got = conc_stack_try_pop(s, &x);
		CHECK(sw, got && x == ITEM(want[i]));
		if (!got || x != ITEM(want[i]))
			return;
	}
	CHECK(sw, !conc_stack_try_pop(s, &x));
	CHECK(sw, conc_stack_is_empty(s));
}

/* A push whose node must come from malloc: this thread's node cache and
 * the shared depot are emptied first. */
static void run_stack_push(struct sweep *sw)
{
	conc_epoch *d;
	conc_stack *s;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_stack_create_in(&s, d) == 0);
	for (unsigned i = 1; i <= 3; i++)
		CHECK(sw, conc_stack_push(s, ITEM(i)) == 0);
	conc__stack_trim_caches();
	arm(sw);
	int err = conc_stack_push(s, ITEM(4));
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	if (err) {
		static const uintptr_t before[] = {3, 2, 1};
		check_stack_holds(sw, s, before, 3); /* unchanged */
		for (unsigned i = 1; i <= 3; i++)
			CHECK(sw, conc_stack_push(s, ITEM(i)) == 0);
		CHECK(sw, conc_stack_push(s, ITEM(4)) == 0); /* usable afterwards */
	}
	static const uintptr_t after[] = {4, 3, 2, 1};
	check_stack_holds(sw, s, after, 4);
	conc_stack_destroy(s, NULL);
	check_destroy_domain(sw, d);
}

/*
 * A push made while the pushing thread exits, after the stack's own
 * thread-exit hook has handed its node cache back (a destructor of a
 * pthread key created later runs after it): the node comes straight from
 * its own one-node slab (site stack.node_exiting).
 */
static pthread_key_t late_key;
static struct {
	conc_stack *s;
	int err_live, err_exiting;
} late;

static void late_destructor(void *arg)
{
	(void)arg;
	late.err_exiting = conc_stack_push(late.s, ITEM(2));
}

static void *late_thread(void *arg)
{
	(void)arg;
	late.err_live = conc_stack_push(late.s, ITEM(1));
	pthread_setspecific(late_key, &late);
	return NULL;
}

static void run_stack_push_at_exit(struct sweep *sw)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_stack_create_in(&late.s, d) == 0);
	late.err_live = late.err_exiting = -1;
	conc__stack_trim_caches(); /* the depot too: both pushes allocate */
	arm(sw);
	pthread_t t;
	int started = pthread_create(&t, NULL, late_thread, NULL) == 0;
	if (started)
		pthread_join(t, NULL);
	disarm(sw);
	CHECK(sw, started);
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 2);
	/* exactly the push whose site failed got the error */
	int want = want_err(sw);
	bool exiting = site_is(sw, "stack.node_exiting");
	CHECK(sw, late.err_live == (want && !exiting ? want : 0));
	CHECK(sw, late.err_exiting == (exiting ? want : 0));
	uintptr_t held[2];
	unsigned n = 0;
	if (late.err_exiting == 0)
		held[n++] = 2;
	if (late.err_live == 0)
		held[n++] = 1;
	check_stack_holds(sw, late.s, held, n);
	CHECK(sw, conc_stack_push(late.s, ITEM(3)) == 0); /* usable afterwards */
	static const uintptr_t three[] = {3};
	check_stack_holds(sw, late.s, three, 1);
	conc_stack_destroy(late.s, NULL);
	check_destroy_domain(sw, d);
}

static void run_stack_pops(struct sweep *sw)
{
	run_container_pops(sw, &tl_stack);
}

static void test_faults_stack(void **state)
{
	(void)state;
	conc_test_watchdog("faults_stack", 120);
	sweep("stack_create", run_stack_create_global);
	sweep("stack_create_in", run_stack_create_in);
	sweep("stack_push", run_stack_push);
	sweep("stack_pop_close", run_stack_pops);
	/* The stack's exit key exists once a thread has pushed; ours comes
	 * after it, so its destructor runs after the stack's. */
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	assert_int_equal(conc_stack_push(s, ITEM(1)), 0);
	conc_stack_destroy(s, NULL);
	assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
	sweep("stack_push_at_exit", run_stack_push_at_exit);
	pthread_key_delete(late_key);
	conc_test_watchdog_off();
}

static void test_faults_hammer_stack(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_stack", 120);
	conc__stack_trim_caches();
	hammer_container(&tl_stack, 0, 0);
	hammer_container(&tl_stack, 20000, 4);
	hammer_container(&tl_stack, HAM_PPM, 5);
	hammer_container(&tl_stack, 900000, 6);
	conc_test_watchdog_off();
}

int main(void)
{
	faults_begin("stack");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_stack),
		cmocka_unit_test(test_faults_hammer_stack),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
