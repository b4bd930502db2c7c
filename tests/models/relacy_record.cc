/*
 * relacy_record.cc - Relacy model of the epoch record slot handover,
 * src/epoch/alg_epoch.h (conc__ebr_slot_free, conc__ebr_slot_owner), as
 * src/epoch/epoch.c uses it: a record of a live thread dropped by another thread
 * (conc_epoch_destroy of its domain), then reused by its owner for another
 * domain without a lock.
 *
 * Scenario (3 threads):
 *   dropper  drop_record's writes: unlink (the record's link field, an
 *            rl::var), the state word cleared (relaxed, as in src/epoch/epoch.c),
 *            then the slot freed (the handover's release);
 *   owner    waits until its slot reads free (the handover's acquire), then
 *            links the record into the new domain (the link field again)
 *            and pins there: state = epoch 5, depth 1 (the record's
 *            conc__ebr_pin, fence mode);
 *   scanner  the new domain's advance scan: once it sees the owner
 *            registered (the domain's list, published by a release store
 *            as the write lock would), it reads the state word with acquire.
 * Checked: no data race on the link field (the drop's write and the reuse's
 * are ordered), and after the run the state word holds the owner's pin -
 * the drop's clear never lands after the pin (which would hide a pinned
 * reader from the new domain's advance).
 * Planted bug (CONC_PLANT, mutant 11 of src/epoch/alg_epoch.h): the
 * handover relaxed on both sides.
 */
#ifdef CONC_PLANT
#undef CONC_MUTANT
#define CONC_MUTANT 11
#endif
#include "relacy_common.hpp"

static const uint64_t PINNED = (uint64_t)5 << 32 | 1;

struct record_test : rl::test_suite<record_test, 3> {
	rl::atomic<conc_epoch *> slot;  /* rec->hot.domain */
	rl::atomic<uint64_t> state;     /* rec->hot.state */
	rl::var<int> link;              /* rec->next / prev */
	rl::atomic<int> listed;         /* the new domain's record list */
	rl::atomic<uint64_t> epoch;     /* the new domain's E */
	conc_epoch *old_domain, *new_domain, *free_mark;

	void before()
	{
		/* stand-in addresses: only compared, never dereferenced */
		old_domain = reinterpret_cast<conc_epoch *>(uintptr_t(0x1000));
		new_domain = reinterpret_cast<conc_epoch *>(uintptr_t(0x2000));
		free_mark = reinterpret_cast<conc_epoch *>(uintptr_t(1)); /* NO_DOMAIN */
		slot($).store(old_domain, rl::mo_relaxed);
		state($).store(0, rl::mo_relaxed);
		link($) = 1; /* linked in the old domain */
		listed($).store(0, rl::mo_relaxed);
		epoch($).store(5, rl::mo_relaxed);
	}
	void thread(unsigned t)
	{
		if (t == 0) { /* the dropper: drop_record */
			link($) = 0;
			state($).store(0, rl::mo_relaxed);
			conc__ebr_slot_free(&slot, free_mark);
		} else if (t == 1) { /* the owner: get_rec, then pin */
			while (conc__ebr_slot_owner(&slot) != free_mark)
				rl::yield(1, $);
			link($) = 2;
			slot($).store(new_domain, rl::mo_relaxed);
			/* the insert under the new domain's write lock:
			 * release, as the unlock is */
			listed($).store(1, rl::mo_release);
			conc__ebr_pin(&state, &epoch, true);
		} else { /* the new domain's scan, under its read lock */
			if (listed($).load(rl::mo_acquire)) {
				uint64_t s = state($).load(rl::mo_acquire);
				RL_ASSERT(s == 0 || s == PINNED);
			}
		}
	}
	void after()
	{
		/* The owner is still pinned: the drop's clear must not have
		 * overwritten its pin. */
		RL_ASSERT(state($).load(rl::mo_relaxed) == PINNED);
		RL_ASSERT(link($) == 2);
	}
};

int main(int argc, char **argv)
{
	unsigned long n = conc_model_iters(argc, argv, 100000);
	unsigned B = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
	bool ok = conc_model_run<record_test>("record handover 3 threads", n, B);
	ok = conc_model_run<record_test>("record handover 3 threads random", n, 0) && ok;
	return ok ? 0 : 1;
}
