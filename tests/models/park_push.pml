/*
 * park_push.pml - the wake of a task pushed from inside a task (src/pool/pool.c,
 * push_local against a parking worker; issue 22, fault 7), under x86-TSO,
 * checked with spin.
 *
 * A MODEL, NOT THE CODE.  Unlike park.pml (which models the seq_cst park
 * protocol under sequential consistency), this one models the store buffer,
 * because the pusher's side is not seq_cst: push_local publishes the deque's
 * bottom with a release store and then reads work_park's waiter count with
 * a relaxed load - no fence between (a fence per push is what the fan-out
 * path cannot afford).  On TSO the store may sit in the pusher's store
 * buffer while its load already reads memory: the store-buffering shape.
 *
 * Processes:
 *   pusher - S: bottom = 1 (into its store buffer); a compiler barrier;
 *            L: read waiters; wake the parker if it is non-zero.  Then it
 *            blocks on the child (it never pops it itself): the case where a
 *            lost wake is a deadlock.
 *   drain  - the pusher's store buffer drains to memory at any moment.
 *   parker - park_prepare: waiters++ (a locked RMW + fence: its own buffer
 *            is empty after it); then the asymmetric barrier,
 *            membarrier(PRIVATE_EXPEDITED): an IPI runs a full barrier on
 *            every CPU running our threads - modelled as draining the
 *            pusher's buffer at that point; then the re-check of bottom
 *            (work_available); sleep only if it is empty, until a wake (the
 *            futex word makes a wake that came first count: `woken` stays).
 * Property: no lost wake - no run ends with the parker asleep and the child
 *   in the deque with nobody to run it (spin: invalid end state).
 * Planted bugs: -DPLANT=1 is the code before the fix (no barrier on either
 *   side): the parker reads bottom while the store is still buffered and the
 *   pusher reads waiters before the increment - both miss;
 *   -DPLANT=2 issues the membarrier before the waiter increment (the
 *   barrier must come after the announce, or the pusher's load may precede
 *   the increment with its store still buffered past the barrier).
 */
byte bottom = 0;     /* memory: the deque holds the child (1) */
byte waiters = 0;    /* memory: work_park.waiters */
bool buf_full = false; /* the pusher's store buffer: bottom = 1 pending */
bool woken = false;  /* a wake was sent (the futex word moved) */
bool pushed = false;

inline drain_pusher() {
	if
	:: buf_full -> bottom = 1; buf_full = false
	:: else -> skip
	fi
}

proctype pusher() {
	atomic { buf_full = true; pushed = true };  /* S: release store, buffered */
	/* compiler barrier only; L reads memory (not its own buffer: another
	 * address) */
	if
	:: waiters != 0 -> woken = true             /* wake_one */
	:: else -> skip
	fi
	/* blocks on the child from here on */
}

proctype drain() {
	/* end: a buffer drained by the membarrier leaves nothing to do */
end:	atomic { buf_full -> bottom = 1; buf_full = false }
}

proctype parker() {
#if PLANT == 2
	atomic { drain_pusher() };                  /* planted: barrier first */
#endif
	waiters++;                                  /* prepare: RMW + fence */
#if PLANT == 0
	atomic { drain_pusher() };                  /* membarrier */
#endif
	if
	:: bottom != 0 -> waiters--                 /* re-check: work, cancel */
	:: else ->
		woken;                              /* FUTEX_WAIT until a wake */
		waiters--
	fi;
	/* awake: it steals the child (bottom is 1 by now: the wake came
	 * after the pusher's store, which drains in time) */
	bottom != 0
}

init {
	atomic {
		run pusher();
		run drain();
		run parker()
	}
}
