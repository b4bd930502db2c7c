/*
 * atfork.h - the library's one pthread_atfork registration.
 *
 * fork() copies only the calling thread; any lock another thread held at
 * that instant stays held in the child, by nobody.  So every lock or spin
 * flag a fork could catch held has a prepare handler (take it), a parent
 * handler (release it) and a child handler (release or re-initialise it,
 * and forget the threads the child does not have).
 *
 * Modules register their three handlers here, each into its own slot, from
 * the one-time initialisation that precedes the first use of their locks.
 * prepare runs the slots in the order below, which is the library's global
 * lock order (a lock is only ever taken while holding locks of earlier
 * slots, never later ones), so prepare itself can never deadlock against a
 * thread that nests them; parent and child run in the reverse order.  The
 * order does not depend on which module registered first (glibc runs
 * separate pthread_atfork prepares in reverse registration order, which is
 * why the modules no longer call it themselves).
 *
 * The lock order, outermost first:
 *   POOL   pool.c global_lock: conc_pool_global() holds it while it creates
 *          the pool, which creates the pool's epoch domain (registry_lock).
 *          Its fork handling takes no lock: the child re-initialises
 *          global_lock and forgets the parent's pool (pool.c atfork_child),
 *          so a fork never waits for a pool's creation.
 *   SCOPE  scope.c cache.lock: a leaf (nothing is taken under it), listed
 *          before the epoch so that a future nesting scope -> epoch stays
 *          legal.
 *   EPOCH  epoch.c registry_lock, then each domain's lock (detach's order).
 *   STACK  the stack's node cache depot lock (stack/nodecache.c), a spin
 *          flag: a leaf (held for a few pointer moves; epoch callbacks,
 *          which reach it when they give nodes back, run under no libconc
 *          lock).
 * Locks no fork handler takes, by design: a pool's admin mutex and a
 * scope's own lock belong to objects that the child cannot use anyway (their
 * threads are not in the child); a channel's waiter-list spin flags belong
 * to that channel, which the child may only destroy when another thread was
 * inside it at the fork (conc/chan.h, "fork()").
 */
#ifndef CONC_INTERNAL_ATFORK_H
#define CONC_INTERNAL_ATFORK_H

enum conc__atfork_slot {
	CONC__ATFORK_POOL,
	CONC__ATFORK_SCOPE,
	CONC__ATFORK_EPOCH,
	CONC__ATFORK_STACK,
	CONC__ATFORK_SLOTS
};

/*
 * conc__atfork_register - install slot's handlers (once per slot).
 *
 * Call it before the first use of the locks the handlers take.  Any handler
 * may be NULL.  Never fails (if the one pthread_atfork call of the library
 * failed - ENOMEM - no handler runs, as before the registry).  A call that
 * meets a fork in progress which has already passed its slot waits for that
 * fork to finish: the caller's locks are unseen by that fork, and must not
 * be taken before the child's copy is made.
 */
void conc__atfork_register(enum conc__atfork_slot slot, void (*prepare)(void),
			   void (*parent)(void), void (*child)(void));

#endif
