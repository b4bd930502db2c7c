/*
 * relacy_common.hpp - shared parts of the Relacy harnesses (relacy_*.cc).
 *
 * The harnesses run libconc's own algorithm cores (src/<module>/alg_*.h)
 * under Relacy's relaxed-memory model checker: CONC_RELACY maps the atomics
 * layer (src/base/atomics.h) to rl::atomic / rl::var / Relacy fences,
 * so every load, store, RMW and fence the cores do is one the checker
 * schedules and reorders as C++11 allows.  What the harness adds is the
 * scenario (threads and their operations), the invariants it asserts, and
 * the stand-ins for what the cores call out to (segment allocation, the
 * epoch domain's bookkeeping).
 *
 * Each harness is built twice: as is (Relacy must find nothing) and with
 * CONC_PLANT (one planted bug; Relacy must report it).  main() prints one
 * "relacy: <scenario> iterations=N result=ok|FAIL" line per scenario and
 * exits 0 when every scenario passed, 1 when one failed;
 * tests/models/run_models.sh checks both builds and prints the reliability
 * line.
 */
#ifndef CONC_RELACY_COMMON_HPP
#define CONC_RELACY_COMMON_HPP

#define CONC_RELACY 1
#include <relacy/relacy.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "epoch/alg_epoch.h"

/*
 * A small epoch domain built from the real core (alg_epoch.h): one record
 * per thread, the pin announcement and fence, the advance with its check
 * over every participant, retire tags and the due test.  What src/epoch/epoch.c
 * adds around it (registration, nesting, bags shared with helpers, the
 * advance policy) is bookkeeping the model leaves out: a thread keeps its
 * retired objects in a plain array and runs the due ones itself.
 * Fence mode: Relacy has no membarrier, so the heavy barrier is a seq_cst
 * fence and pin passes fence = true (conc__ebr_pin's fence mode).
 */
template <unsigned T, unsigned MAXR>
struct model_ebr {
	rl::atomic<uint64_t> epoch;
	rl::atomic<uint64_t> state[T];
	struct retired {
		void *p;
		void (*fn)(void *);
		uint64_t tag;
	};
	retired bag[T][MAXR]; /* thread-private: not shared memory */
	unsigned nbag[T];
	bool pin_fence;

	void init(bool fence)
	{
		pin_fence = fence;
		epoch($).store(0, rl::mo_relaxed);
		for (unsigned i = 0; i < T; i++) {
			state[i]($).store(0, rl::mo_relaxed);
			nbag[i] = 0;
		}
	}
	void pin(unsigned t) { conc__ebr_pin(&state[t], &epoch, pin_fence); }
	void unpin(unsigned t) { conc__ebr_unpin(&state[t]); }

	static bool all_at(void *ctx, uint64_t e, rl::memory_order mo)
	{
		model_ebr *d = static_cast<model_ebr *>(ctx);
		for (unsigned i = 0; i < T; i++)
			if (conc__ebr_holds_back(&d->state[i], e, mo))
				return false;
		return true;
	}
	static void heavy_barrier() { conc_fence(CONC_MO_SEQ_CST); }
	bool try_advance() { return conc__ebr_try_advance(&epoch, all_at, this, heavy_barrier); }

	/* p is unreachable for new readers: fn(p) once it is due. */
	void retire(unsigned t, void *p, void (*fn)(void *))
	{
		RL_ASSERT(nbag[t] < MAXR);
		retired &r = bag[t][nbag[t]++];
		r.p = p;
		r.fn = fn;
		r.tag = conc__ebr_retire_tag(&epoch, pin_fence);
	}
	/* Run this thread's due objects (the callers are unpinned). */
	void collect(unsigned t)
	{
		uint64_t e = conc__ebr_load_epoch(&epoch);
		unsigned k = 0;
		for (unsigned i = 0; i < nbag[t]; i++) {
			if (conc__ebr_due(bag[t][i].tag, e))
				bag[t][i].fn(bag[t][i].p);
			else
				bag[t][k++] = bag[t][i];
		}
		nbag[t] = k;
	}
	/* After the run (no thread left): everything is due. */
	void drain()
	{
		for (unsigned t = 0; t < T; t++) {
			for (unsigned i = 0; i < nbag[t]; i++)
				bag[t][i].fn(bag[t][i].p);
			nbag[t] = 0;
		}
	}
};

static inline bool conc_model_run_one(const char *name, rl::test_params &p, bool ok)
{
	std::printf("relacy: %s iterations=%llu result=%s\n", name,
		    (unsigned long long)p.stop_iteration,
		    ok ? "ok" : "FAIL");
	std::fflush(stdout);
	return ok;
}

/* Run test suite S: with the random scheduler for iters iterations, or
 * (bound > 0) every schedule with at most `bound` preemptions (Relacy's
 * context-bound search; iters is then what the search took). */
template <class S>
static bool conc_model_run(const char *name, unsigned long iters, unsigned bound = 0)
{
	rl::test_params p;
	p.iteration_count = iters;
	p.search_type = bound ? rl::fair_context_bound_scheduler_type : rl::random_scheduler_type;
	p.context_bound = bound;
	p.progress_output_period = 1000000; /* quiet */
	bool ok = rl::simulate<S>(p);
	return conc_model_run_one(name, p, ok);
}

/* The iteration count: argv[1] when given (the script scales it). */
static inline unsigned long conc_model_iters(int argc, char **argv, unsigned long dflt)
{
	return argc > 1 ? std::strtoul(argv[1], 0, 10) : dflt;
}

#endif
