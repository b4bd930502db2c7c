/*
 * relacy_epoch.cc - Relacy model of libconc's epoch reclamation (EBR) core,
 * src/epoch/alg_epoch.h: pin announcement + fence, unpin release, retire
 * tag, advance (check over every participant, barrier, CAS) and the due
 * test (GRACE), in fence mode (relacy_common.hpp says why).
 *
 * Scenario: readers pin, load the shared pointer, read the object through
 * it, unpin; a writer swaps in a new object, retires the old one and then
 * tries to advance the epoch and collect, several times.  The object's
 * field is an rl::var and its memory Relacy's: a free while a reader may
 * still read it is reported (access to freed memory, or a data race).
 *   2 threads: 1 reader (2 critical sections), 1 writer.
 *   3 threads: 2 readers, 1 writer (2 swaps).
 * Planted bug (CONC_PLANT): pin without its fence - the announcement can
 * then be seen by the advancer's scan after the reader already loaded the
 * old pointer, so the object is freed under the reader.
 */
#include "relacy_common.hpp"

struct obj {
	rl::var<int> data;
};

static void free_obj(void *p)
{
	delete static_cast<obj *>(p);
}

#ifdef CONC_PLANT
static const bool pin_fence = false;
#else
static const bool pin_fence = true;
#endif

template <unsigned T, unsigned SWAPS>
struct ebr_test : rl::test_suite<ebr_test<T, SWAPS>, T> {
	model_ebr<T, 4> d;
	rl::atomic<obj *> ptr;

	void before()
	{
		d.init(pin_fence);
		obj *o = new obj;
		o->data($) = 1;
		ptr($).store(o, rl::mo_relaxed);
	}
	void thread(unsigned t)
	{
		if (t == T - 1) { /* the writer */
			for (unsigned k = 0; k < SWAPS; k++) {
				obj *n = new obj;
				n->data($) = 2 + (int)k;
				/* release: publishes n->data; acquire: the
				 * old object's state, for the free */
				obj *old = ptr($).exchange(n, rl::mo_acq_rel);
				d.retire(t, old, free_obj);
				for (int a = 0; a < 4; a++) {
					d.try_advance();
					d.collect(t);
				}
			}
		} else { /* a reader */
			for (int k = 0; k < 2; k++) {
				d.pin(t);
				/* acquire: pairs with the writer's exchange */
				obj *o = ptr($).load(rl::mo_acquire);
				int v = o->data($);
				RL_ASSERT(v >= 1 && v <= 1 + (int)SWAPS);
				d.unpin(t);
			}
		}
	}
	void after()
	{
		d.drain();
		delete ptr($).load(rl::mo_relaxed);
	}
};

int main(int argc, char **argv)
{
	unsigned long n = conc_model_iters(argc, argv, 100000);
	unsigned B = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	/* 2 threads: every schedule with up to B preemptions; 3 threads:
	 * every schedule with one preemption (a reader stopped anywhere while
	 * the others run) - the planted bug needs exactly that, which the
	 * random scheduler almost never produces (it would have to leave a
	 * reader alone for the writer's ~40 steps). */
	bool ok = conc_model_run<ebr_test<2, 1> >("epoch 2 threads", n, B);
	ok = conc_model_run<ebr_test<3, 2> >("epoch 3 threads", n, 1) && ok;
	return ok ? 0 : 1;
}
