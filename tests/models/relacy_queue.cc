/*
 * relacy_queue.cc - Relacy model of libconc's queue core,
 * src/queue/alg_queue.h: the FAAArrayQueue push and try_pop loops (slot
 * claim by fetch-and-add, the slot exchange, the Michael-Scott link of a
 * new segment, the tail swing and the head advance), run as they are.
 *
 * Segments of CONC__Q_SEG_SLOTS = 2 slots, so that 3 items already cross into a
 * second segment (link, swing, advance); a pop waits CONC__Q_SLOT_WAIT = 1
 * round for a late pusher, so that burned slots (a pusher retrying
 * elsewhere) are explored too.  Index i lives at slot i ^ 1 (a permutation
 * of [0, 2), as queue.c's cache remap is of [0, 1024)), so an access that
 * skipped CONC__Q_SLOT would read the wrong slot.  The item is the slot word
 * itself (an atomic); what it publishes is checked through a payload, an
 * rl::var per item that the producer writes before the push and the
 * consumer reads after the pop: a pop that was not ordered after its push
 * is a data race Relacy reports.  Producer 0's first two items are 0 (NULL)
 * and 1, stored as the escape word with the item in the slot's esc byte (a
 * plain variable: a pop that read it unordered after its push is a race).
 * Retired segments are freed after the run (the epoch's grace period is
 * modelled in relacy_epoch.cc); segments never published are freed at once.
 * Invariants checked after every run: every pushed item popped exactly once
 * (the rest drained after the run), per-producer FIFO order.
 *   2 threads: a producer pushes 3, a consumer try_pops 3 times.
 *   3 threads: two producers push 2 each, a consumer try_pops 3 times.
 *   3 threads: a producer pushes 3, two consumers try_pop twice each.
 *   3 threads: a single push and a batch of 2 (sealing), two single
 *     pushes, a consumer (queue_batch_test below).
 * Planted bug (CONC_PLANT): the link CAS weakened from seq_cst to relaxed
 * (CONC__Q_LINK_MO), so that a new segment's initialisation and its first
 * item's payload are not published to the consumer that follows the link
 * (Relacy reports the read of an unpublished field or payload).
 */
#include "relacy_common.hpp"

#ifdef CONC_PLANT
#define CONC__Q_LINK_MO rl::mo_relaxed
#endif

#define CONC__Q_SEG_SLOTS 2
#define CONC__Q_SLOT_WAIT 1
#define CONC__Q_SLOT(s, i) ((i) ^ 1)

struct seg {
	rl::atomic<uint_fast64_t> enq, deq;
	rl::atomic<seg *> next, pending;
	rl::atomic<uintptr_t> slot[CONC__Q_SEG_SLOTS];
	rl::var<unsigned char> esc[CONC__Q_SEG_SLOTS]; /* escaped items 0..2 */
};

#define MAX_SEGS 8

struct conc_queue {
	rl::atomic<seg *> head, tail;
	seg *retired[MAX_SEGS]; /* harness bookkeeping, not shared memory */
	unsigned nretired;
};

static seg *seg_get(conc_queue *q, uint_fast64_t cap)
{
	(void)q;
	RL_ASSERT(cap <= CONC__Q_SEG_SLOTS);
	seg *s = new seg;
	/* relaxed, as seg_reset: the link CAS publishes s */
	s->enq($).store(0, rl::mo_relaxed);
	s->deq($).store(0, rl::mo_relaxed);
	s->next($).store(0, rl::mo_relaxed);
	s->pending($).store(0, rl::mo_relaxed);
	for (unsigned i = 0; i < CONC__Q_SEG_SLOTS; i++)
		s->slot[i]($).store(0, rl::mo_relaxed);
	return s;
}

static void seg_put(conc_queue *q, seg *s)
{
	(void)q;
	delete s;
}

static void seg_retire(conc_queue *q, seg *s)
{
	RL_ASSERT(q->nretired < MAX_SEGS);
	q->retired[q->nretired++] = s;
}

#include "queue/alg_queue.h"

#define MAXT 3
#define MAXITEMS 8

/* Producer 0's item 0 is NULL. */
static void *item_of(unsigned producer, unsigned seq)
{
	return (void *)(uintptr_t)((producer << 8) | seq);
}

template <unsigned T, unsigned PRODUCERS, unsigned PUSHES, unsigned POPS>
struct queue_test : rl::test_suite<queue_test<T, PRODUCERS, PUSHES, POPS>, T> {
	conc_queue q;
	void *got[MAXT][MAXITEMS]; /* per consumer, in pop order */
	unsigned ngot[MAXT];
	rl::var<unsigned> payload[MAXT][MAXITEMS]; /* what a push publishes */

	/* Read item's payload (a race if its push did not happen before). */
	void check_payload(void *it)
	{
		uintptr_t v = (uintptr_t)it;
		unsigned p = (unsigned)(v >> 8), s = (unsigned)(v & 0xff);
		RL_ASSERT(p < MAXT && s < MAXITEMS);
		RL_ASSERT(payload[p][s]($) == s + 1);
	}

	void before()
	{
		q.nretired = 0;
		seg *s = seg_get(&q, CONC__Q_SEG_SLOTS);
		q.head($).store(s, rl::mo_relaxed);
		q.tail($).store(s, rl::mo_relaxed);
		for (unsigned t = 0; t < MAXT; t++)
			ngot[t] = 0;
	}
	void thread(unsigned t)
	{
		if (t < PRODUCERS) {
			for (unsigned k = 0; k < PUSHES; k++) {
				payload[t][k]($) = k + 1;
				RL_ASSERT(conc__q_push(&q, item_of(t, k)) == 0);
			}
		} else {
			for (unsigned k = 0; k < POPS; k++) {
				void *it;
				if (conc__q_try_pop(&q, &it)) {
					check_payload(it);
					got[t][ngot[t]++] = it;
				}
			}
		}
	}
	void after()
	{
		/* drain what the consumers left, as one more consumer */
		unsigned extra = 0;
		void *rest[MAXITEMS];
		void *it;
		while (extra < MAXITEMS && conc__q_try_pop(&q, &it)) {
			check_payload(it);
			rest[extra++] = it;
		}
		unsigned seen[MAXT] = {0};
		unsigned total = extra;
		for (unsigned t = PRODUCERS; t < T; t++)
			total += ngot[t];
		RL_ASSERT(total == PRODUCERS * PUSHES); /* nothing lost, nothing extra */
		for (unsigned p = 0; p < PRODUCERS; p++)
			for (unsigned k = 0; k < PUSHES; k++) {
				unsigned n = 0;
				for (unsigned t = PRODUCERS; t < T; t++)
					for (unsigned i = 0; i < ngot[t]; i++)
						n += got[t][i] == item_of(p, k);
				for (unsigned i = 0; i < extra; i++)
					n += rest[i] == item_of(p, k);
				RL_ASSERT(n == 1); /* exactly once */
			}
		/* per-producer FIFO within each consumer's sequence */
		for (unsigned t = PRODUCERS; t < T; t++) {
			for (unsigned p = 0; p < MAXT; p++)
				seen[p] = 0;
			for (unsigned i = 0; i < ngot[t]; i++) {
				uintptr_t v = (uintptr_t)got[t][i];
				unsigned p = (unsigned)(v >> 8), s = (unsigned)(v & 0xff);
				RL_ASSERT(s + 1 > seen[p]);
				seen[p] = s + 1;
			}
		}
		seg *s = q.head($).load(rl::mo_relaxed);
		while (s) {
			seg *n = s->next($).load(rl::mo_relaxed);
			delete s;
			s = n;
		}
		for (unsigned i = 0; i < q.nretired; i++)
			delete q.retired[i];
	}
};

/*
 * Batches (conc__q_link_batch, conc_queue_push_n's core): producer 0
 * pushes item (0,0) and then the batch (0,1) (0,2) as one segment,
 * written while private (as queue.c's push_n writes it) and linked with
 * conc__q_link_batch; producer 1 pushes (1,0) (1,1); a consumer try_pops
 * 3 times.  With 2-slot segments the batch finds the tail with room after
 * (0,0) in most schedules, so it seals it, and producer 1's pushes meet
 * the seal and link the batch themselves (the pending path).  Checked: as
 * above, and the batch is consecutive: in the consumer's pops followed by
 * the drain (one thread: the queue's order), (0,1) is right before (0,2),
 * and a push of producer 1 that began after the batch returned comes out
 * after it (the seal: without it such a push can land in the old tail).
 */
static int model_push_n(conc_queue *q, void **items, unsigned n)
{
	seg *s = seg_get(q, CONC__Q_SEG_SLOTS);
	for (unsigned j = 0; j < n; j++) {
		uint_fast64_t p = CONC__Q_SLOT(s, j);
		/* relaxed: s is private until the link (or the pending CAS) */
		s->slot[p]($).store(conc__q_word(s, p, (uintptr_t)items[j]), rl::mo_relaxed);
	}
	s->enq($).store(n, rl::mo_relaxed);
	int r = conc__q_link_batch(q, s, s);
	if (r)
		seg_put(q, s);
	return r;
}

struct queue_batch_test : rl::test_suite<queue_batch_test, 3> {
	conc_queue q;
	void *got[MAXITEMS];
	unsigned ngot;
	rl::var<unsigned> payload[MAXT][MAXITEMS];
	rl::atomic<int> batch_done; /* producer 0's push_n has returned */
	bool later[2];              /* producer 1's push k began after that */

	void check_payload(void *it)
	{
		uintptr_t v = (uintptr_t)it;
		unsigned p = (unsigned)(v >> 8), s = (unsigned)(v & 0xff);
		RL_ASSERT(p < 2 && s < 3);
		RL_ASSERT(payload[p][s]($) == s + 1);
	}
	void before()
	{
		q.nretired = 0;
		seg *s = seg_get(&q, CONC__Q_SEG_SLOTS);
		q.head($).store(s, rl::mo_relaxed);
		q.tail($).store(s, rl::mo_relaxed);
		ngot = 0;
		batch_done($).store(0, rl::mo_relaxed);
	}
	void thread(unsigned t)
	{
		if (t == 0) {
			payload[0][0]($) = 1;
			RL_ASSERT(conc__q_push(&q, item_of(0, 0)) == 0);
			payload[0][1]($) = 2;
			payload[0][2]($) = 3;
			void *b[2] = {item_of(0, 1), item_of(0, 2)};
			RL_ASSERT(model_push_n(&q, b, 2) == 0);
			batch_done($).store(1, rl::mo_seq_cst);
		} else if (t == 1) {
			for (unsigned k = 0; k < 2; k++) {
				payload[1][k]($) = k + 1;
				later[k] = batch_done($).load(rl::mo_seq_cst) != 0;
				RL_ASSERT(conc__q_push(&q, item_of(1, k)) == 0);
			}
		} else {
			for (unsigned k = 0; k < 3; k++) {
				void *it;
				if (conc__q_try_pop(&q, &it)) {
					check_payload(it);
					got[ngot++] = it;
				}
			}
		}
	}
	void after()
	{
		void *it;
		while (ngot < MAXITEMS && conc__q_try_pop(&q, &it)) {
			check_payload(it);
			got[ngot++] = it;
		}
		RL_ASSERT(ngot == 5); /* nothing lost, nothing extra */
		int at[2][3] = {{-1, -1, -1}, {-1, -1, -1}};
		for (unsigned i = 0; i < ngot; i++) {
			uintptr_t v = (uintptr_t)got[i];
			unsigned p = (unsigned)(v >> 8), k = (unsigned)(v & 0xff);
			RL_ASSERT(at[p][k] == -1); /* exactly once */
			at[p][k] = (int)i;
		}
		RL_ASSERT(at[0][0] < at[0][1] && at[1][0] < at[1][1]); /* per-producer FIFO */
		RL_ASSERT(at[0][2] == at[0][1] + 1);		  /* the batch is consecutive */
		for (unsigned k = 0; k < 2; k++) /* real time: a push begun after the batch returned */
			RL_ASSERT(!later[k] || at[1][k] > at[0][2]);
		seg *s = q.head($).load(rl::mo_relaxed);
		while (s) {
			seg *n = s->next($).load(rl::mo_relaxed);
			delete s;
			s = n;
		}
		for (unsigned i = 0; i < q.nretired; i++)
			delete q.retired[i];
	}
};

int main(int argc, char **argv)
{
	unsigned long n = conc_model_iters(argc, argv, 100000);
	unsigned B = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	bool ok = conc_model_run<queue_test<2, 1, 3, 3> >("queue 2 threads 1p1c", n, B);
	ok = conc_model_run<queue_test<3, 2, 2, 3> >("queue 3 threads 2p1c", n) && ok;
	ok = conc_model_run<queue_test<3, 1, 3, 2> >("queue 3 threads 1p2c", n) && ok;
	ok = conc_model_run<queue_batch_test>("queue 3 threads batch", n) && ok;
	return ok ? 0 : 1;
}
