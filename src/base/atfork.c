/*
 * atfork.c - the fork handler registry (base/atfork.h has the lock
 * order and why).
 *
 * Each slot has a state word:
 *   EMPTY   nothing registered; a fork passing the slot seals it.
 *   SEALED  a fork in progress passed the slot while it was empty.
 *   READY   handlers registered (from then on, for good).
 * Edges: EMPTY -> READY by register's CAS; EMPTY -> SEALED by prepare's
 * CAS; SEALED -> EMPTY by the parent and child handlers.
 *
 * Why sealing.  A module registers from its first use, which may run while
 * another thread forks.  If prepare read the slot as empty and the module
 * then took its lock, the child would inherit that lock held, with no
 * handler to release it.  A registration that finds its slot sealed waits
 * for the fork to end instead.  That wait cannot deadlock: prepare has
 * passed the slot, so it has taken every lock of the earlier slots already
 * and will take only locks of later slots, which the waiter (following the
 * lock order) does not hold.  A registration that wins the CAS before
 * prepare reaches the slot is seen by that prepare (and its handler then
 * waits for the registrant's lock like any other holder's).
 *
 * One fork at a time: glibc holds its atfork lock from the prepare handlers
 * to the parent handlers, so two threads forking at once run these in
 * turn, and after() sees the states its own prepare left.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "base/atfork.h"
#include "base/park.h"

enum { EMPTY, SEALED, READY };

static struct {
	void (*prepare)(void), (*parent)(void), (*child)(void);
} handlers[CONC__ATFORK_SLOTS]; /* written before READY, read after it */

static atomic_uint state[CONC__ATFORK_SLOTS];
static atomic_uint fork_gen; /* futex word: bumped when a parent's fork ends */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
	for (unsigned i = 0; i < CONC__ATFORK_SLOTS; i++) {
		unsigned s = EMPTY;
		/* acquire (the READY case): pairs with register's release
		 * CAS, so the handlers read below are the ones stored.
		 * seq_cst is not needed: one RMW chain per slot decides. */
		if (!atomic_compare_exchange_strong_explicit(&state[i], &s, SEALED,
							     memory_order_acquire,
							     memory_order_acquire) &&
		    s == READY && handlers[i].prepare)
			handlers[i].prepare();
	}
}

/* After the fork, in reverse order: READY slots run their handler (parent
 * or child), SEALED ones open again. */
static void after(int in_child)
{
	for (unsigned i = CONC__ATFORK_SLOTS; i-- > 0;) {
		/* relaxed: this thread sealed or read the slot in prepare */
		unsigned s = atomic_load_explicit(&state[i], memory_order_relaxed);
		if (s == READY) {
			void (*fn)(void) = in_child ? handlers[i].child : handlers[i].parent;
			if (fn)
				fn();
		} else if (s == SEALED) {
			/* release: nothing to publish but the state itself */
			atomic_store_explicit(&state[i], EMPTY, memory_order_release);
		}
	}
}

static void parent(void)
{
	after(0);
	/* release: orders the slots' reopening before the bump a waiting
	 * register reads (acquire) */
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_release);
	conc__futex_wake(&fork_gen, 0x7fffffff);
}

static void child(void)
{
	/* the child has no other thread: nobody waits on fork_gen here */
	after(1);
}

static void install(void)
{
	pthread_atfork(prepare, parent, child);
}

void conc__atfork_register(enum conc__atfork_slot slot, void (*prep)(void),
			   void (*par)(void), void (*chi)(void))
{
	pthread_once(&install_once, install);
	handlers[slot].prepare = prep;
	handlers[slot].parent = par;
	handlers[slot].child = chi;
	for (;;) {
		/* acquire: read before the state, so that a SEALED seen below
		 * belongs to this fork or a later one (a bump we miss wakes
		 * the futex wait at once) */
		unsigned gen = atomic_load_explicit(&fork_gen, memory_order_acquire);
		unsigned s = EMPTY;
		/* release: publishes the handlers to prepare's acquire CAS */
		if (atomic_compare_exchange_strong_explicit(&state[slot], &s, READY,
							    memory_order_release,
							    memory_order_relaxed))
			return;
		if (s == READY)
			return; /* registered already (cannot happen: once per slot) */
		/* SEALED: a fork in progress passed this slot; wait for it */
		conc__futex_wait(&fork_gen, gen, CONC__NO_DEADLINE);
	}
}
