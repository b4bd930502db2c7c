/*
 * relacy_stack.cc - Relacy model of libconc's stack core,
 * src/stack/alg_stack.h: the Treiber push and pop attempts on top (the
 * CASes and their orders), with popped nodes reclaimed through the epoch
 * core (relacy_common.hpp's model_ebr over src/epoch/alg_epoch.h): pop
 * runs pinned, a popped node is retired and freed (src/stack/stack.c recycles
 * it) only once it is due.  The elimination layer and the node caches of
 * src/stack/stack.c are not modelled.
 *
 * Node fields are rl::var and node memory Relacy's: a pop that reads
 * next or item of a node freed under it, or not published to it, is
 * reported.  Invariants after every run: every pushed item popped exactly
 * once (the rest drained after the run).
 *   2 threads: one pushes 2 then pops 2, the other pushes 1 and pops 2.
 *   3 threads: two pushers of 2 items, one popper of 3 (the rest drained).
 *   3 threads: each thread pushes 1 and pops 2.
 * Planted bug (CONC_PLANT): a popped node is freed at once, without a
 * grace period (issue 8's "immediate free instead of retire"): a popper
 * still holding it as its top reads its next after the free.
 */
#include "relacy_common.hpp"

struct snode {
	rl::var<snode *> next;
	rl::var<void *> item;
};

#define CLOSED_TAG ((uintptr_t)1)
#include "stack/alg_stack.h"

#define MAXT 3
#define MAXITEMS 8

static void free_node(void *p)
{
	delete static_cast<snode *>(p);
}

template <unsigned T, unsigned PUSHERS, unsigned PUSHES, unsigned POPS, bool BOTH>
struct stack_test : rl::test_suite<stack_test<T, PUSHERS, PUSHES, POPS, BOTH>, T> {
	rl::atomic<uintptr_t> top;
	model_ebr<T, 8> d;
	void *got[MAXT][MAXITEMS];
	unsigned ngot[MAXT];

	void before()
	{
		top($).store(0, rl::mo_relaxed);
		d.init(true);
		for (unsigned t = 0; t < MAXT; t++)
			ngot[t] = 0;
	}
	void push(void *item)
	{
		snode *n = new snode;
		n->item($) = item;
		uintptr_t seen = conc__treiber_top_for_push(&top);
		while (!conc__treiber_push_try(&top, &seen, n))
			;
	}
	bool pop(unsigned t, void **item)
	{
		bool got = false;
		d.pin(t);
		uintptr_t seen = conc__treiber_top_for_pop(&top);
		for (;;) {
			snode *n = conc__treiber_top_node(seen, CLOSED_TAG);
			if (!n)
				break;
			if (conc__treiber_pop_try(&top, &seen, n, CLOSED_TAG)) {
				*item = n->item($);
#ifdef CONC_PLANT
				free_node(n);
#else
				d.retire(t, n, free_node);
#endif
				got = true;
				break;
			}
		}
		d.unpin(t);
		d.try_advance();
		d.collect(t);
		return got;
	}
	void thread(unsigned t)
	{
		if (BOTH || t < PUSHERS)
			for (unsigned k = 0; k < PUSHES; k++)
				push((void *)(uintptr_t)((t << 8) | (k + 1)));
		if (BOTH || t >= PUSHERS)
			for (unsigned k = 0; k < POPS; k++) {
				void *it;
				if (pop(t, &it))
					got[t][ngot[t]++] = it;
			}
	}
	void after()
	{
		void *rest[MAXITEMS];
		unsigned extra = 0;
		void *it;
		while (extra < MAXITEMS && pop(0, &it))
			rest[extra++] = it;
		unsigned pushers = BOTH ? T : PUSHERS;
		unsigned total = extra;
		for (unsigned t = 0; t < T; t++)
			total += ngot[t];
		RL_ASSERT(total == pushers * PUSHES);
		for (unsigned p = 0; p < pushers; p++)
			for (unsigned k = 0; k < PUSHES; k++) {
				void *want = (void *)(uintptr_t)((p << 8) | (k + 1));
				unsigned n = 0;
				for (unsigned t = 0; t < T; t++)
					for (unsigned i = 0; i < ngot[t]; i++)
						n += got[t][i] == want;
				for (unsigned i = 0; i < extra; i++)
					n += rest[i] == want;
				RL_ASSERT(n == 1);
			}
		d.drain();
	}
};

int main(int argc, char **argv)
{
	unsigned long n = conc_model_iters(argc, argv, 100000);
	unsigned B = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	bool ok = conc_model_run<stack_test<2, 0, 1, 2, true> >("stack 2 threads push+pop", n, B);
	ok = conc_model_run<stack_test<3, 2, 2, 3, false> >("stack 3 threads 2p1c", n) && ok;
	ok = conc_model_run<stack_test<3, 0, 1, 2, true> >("stack 3 threads push+pop", n) && ok;
	return ok ? 0 : 1;
}
