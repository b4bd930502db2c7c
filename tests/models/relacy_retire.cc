/*
 * relacy_retire.cc - Relacy model of the epoch bags' steal handshake,
 * src/epoch/alg_epoch.h (conc__ebr_own_push, conc__ebr_steal_ask,
 * _look, _settled, conc__ebr_take, conc__ebr_steal_done), as src/epoch/epoch.c
 * uses it: a record's owner pushes retired nodes onto its bag with plain
 * (relaxed) loads and stores, no locked RMW, while thieves take the whole
 * list with an exchange - a barrier's steal_all (waits for an owner inside
 * a bag op) and help_others (gives such a record up).
 *
 * Fence mode: Relacy has no membarrier, so the thief's heavy barrier is a
 * seq_cst fence and the owner's light barrier is one too (fence = true),
 * as for pin (relacy_common.hpp); the membarrier proof in src/epoch/epoch.c is
 * the same with the owner's fence virtual.
 *
 * Scenarios:
 *   2 threads (exhaustive up to the preemption bound): the owner pushes 3
 *     nodes; a blocking thief (steal_all) takes once.
 *   3 threads (random): the owner pushes 3 nodes; a blocking thief and a
 *     non-blocking one (help_others) each take once.
 * Each node's payload is an rl::var written by the owner before its push
 * and read by whoever takes it, and its link is an rl::var too, so a take
 * that is not ordered after the push is a data race.  After the run every
 * node is exactly once in a thief's take or in the list left in the bag.
 * Planted bug (CONC_PLANT, mutant 12 of src/epoch/alg_epoch.h): the
 * owner ignores the steal request, so its plain push can follow a take
 * it has not seen (a node then lands both in the take and in the bag).
 */
#ifdef CONC_PLANT
#undef CONC_MUTANT
#define CONC_MUTANT 12
#endif
#include "relacy_common.hpp"

/* The model's node: the fields the handshake touches, as rl::var. */
struct conc_epoch_node {
	rl::var<conc_epoch_node *> next;
	rl::var<int> data;
};

static const unsigned K = 3; /* nodes the owner pushes */

template <unsigned T>
struct retire_test : rl::test_suite<retire_test<T>, T> {
	rl::atomic<uint64_t> ops;
	rl::atomic<int> steal;
	rl::atomic<conc_epoch_node *> head;
	conc_epoch_node nodes[K];
	int seen[T][K]; /* per thread: how often it took node k */

	void before()
	{
		ops($).store(0, rl::mo_relaxed);
		steal($).store(0, rl::mo_relaxed);
		head($).store(nullptr, rl::mo_relaxed);
		for (unsigned k = 0; k < K; k++) {
			nodes[k].next($) = nullptr;
			nodes[k].data($) = 0;
		}
		for (unsigned t = 0; t < T; t++)
			for (unsigned k = 0; k < K; k++)
				seen[t][k] = 0;
	}
	void count(unsigned t, conc_epoch_node *n)
	{
		for (; n; n = n->next($)) {
			unsigned k = (unsigned)(n - nodes);
			RL_ASSERT(k < K);
			RL_ASSERT(n->data($) == (int)k + 1); /* the owner's write */
			seen[t][k]++;
		}
	}
	/* steal_all (block) or help_others (!block) on one record */
	void thief(unsigned t, bool block)
	{
		conc__ebr_steal_ask(&steal);
		rl::atomic_thread_fence(rl::mo_seq_cst, $); /* the heavy barrier */
		uint64_t w0 = conc__ebr_steal_look(&ops);
		while (!conc__ebr_steal_settled(w0, conc__ebr_steal_look(&ops))) {
			if (!block) {
				conc__ebr_steal_done(&steal);
				return;
			}
			rl::yield(1, $);
		}
		conc_epoch_node *n = conc__ebr_take(&head);
		conc__ebr_steal_done(&steal);
		count(t, n);
	}
	void thread(unsigned t)
	{
		if (t == 0) { /* the owner: K retires */
			for (unsigned k = 0; k < K; k++) {
				conc_epoch_node *n = &nodes[k];
				n->data($) = (int)k + 1;
				/* relaxed: the owner's own word */
				uint64_t w = ops($).load(rl::mo_relaxed);
				conc__ebr_own_push(&ops, w, &steal, &head, n, &n->next, true, false);
			}
		} else {
			thief(t, t == 1);
		}
	}
	void after()
	{
		count(0, head($).load(rl::mo_relaxed)); /* left in the bag */
		for (unsigned k = 0; k < K; k++) {
			int total = 0;
			for (unsigned t = 0; t < T; t++)
				total += seen[t][k];
			RL_ASSERT(total == 1);
		}
	}
};

int main(int argc, char **argv)
{
	unsigned long n = conc_model_iters(argc, argv, 100000);
	unsigned B = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	bool ok = true;
	if (B)
		ok = conc_model_run<retire_test<2>>("bag handshake 2 threads", n, B) && ok;
	ok = conc_model_run<retire_test<2>>("bag handshake 2 threads random", n, 0) && ok;
	ok = conc_model_run<retire_test<3>>("bag handshake 3 threads random", n, 0) && ok;
	return ok ? 0 : 1;
}
