/*
 * epoch.h (internal) - what other parts of libconc ask the epoch core.
 */
#ifndef CONC_INTERNAL_EPOCH_H
#define CONC_INTERNAL_EPOCH_H

#include <stdbool.h>

/* A node retired at epoch t runs once the domain's epoch reaches t + GRACE
 * (src/epoch/epoch.c proves why 3). */
#define CONC__EPOCH_GRACE 3

/*
 * When a thread tries to advance the epoch: after every ADVANCE_EVERY
 * retires, unless the domain advanced less than ADVANCE_GAP_NS ago - each
 * advance costs an IPI to every CPU running one of our threads, which a
 * thread retiring millions of objects a second would otherwise send every
 * few microseconds - and in any case after ADVANCE_MAX retires.  So a thread
 * holds about GRACE x ADVANCE_EVERY retired objects when it retires slowly,
 * and at most about GRACE x ADVANCE_MAX when it retires fast.
 */
#define CONC__EPOCH_ADVANCE_EVERY 64
#define CONC__EPOCH_ADVANCE_MAX 1024
#define CONC__EPOCH_ADVANCE_GAP_NS 20000

/* Whether the calling thread is pinned in any domain (records and the
 * shared path alike): a thread that ran user code and comes back pinned
 * must not be handed to the next user (scope's thread cache). */
bool conc__epoch_pinned_anywhere(void);

/* (C only: the C++ models of tests/models include this header for the
 * constants above and below.) */
#ifndef __cplusplus
#include <stdint.h>

#include "conc/epoch.h"
#include "base/arch.h"

/* The cheap half of it, inline: false means the thread is pinned nowhere;
 * true means it may be (then ask conc__epoch_pinned_anywhere).  Two
 * thread-local loads: the state of the record the header's fast path last
 * used, and conc__epoch_elsewhere (src/epoch/epoch.c: its invariant). */
extern _Thread_local unsigned conc__epoch_elsewhere CONC__TLS_IE;
/* conc__epoch_last, through its initial-exec alias (src/epoch/epoch.c). */
extern __thread struct conc__epoch_hot *conc__epoch_last_ie CONC__TLS_IE;
static inline bool conc__epoch_pinned_quick(void)
{
	/* relaxed: the thread's own word (another thread only clears it) */
	return conc__epoch_elsewhere != 0 ||
	       (uint32_t)__atomic_load_n(&conc__epoch_last_ie->state, __ATOMIC_RELAXED) != 0;
}
#endif

/*
 * A snapshot of the calling thread's pins, to undo the pins that user code
 * (a pool task, a parallel body) left behind without touching the ones the
 * thread held before.  One entry per per-thread record and per
 * shared-path slot (src/epoch/epoch.c: REC_SLOTS + OVF_SLOTS): the domain and
 * the nesting depth; and the count of pins beyond those slots.
 */
#define CONC__EPOCH_PIN_SLOTS 64
typedef struct conc__epoch_pins {
	const void *domain[CONC__EPOCH_PIN_SLOTS];
	unsigned depth[CONC__EPOCH_PIN_SLOTS];
	unsigned untracked;
} conc__epoch_pins;

void conc__epoch_pins_save(conc__epoch_pins *s);

/* Unpin what the thread pinned since conc__epoch_pins_save(s) (s NULL: every
 * pin): a pin deeper than in the snapshot goes back to the snapshot's depth,
 * the outermost unpin with the release of conc_epoch_unpin.  Pins the
 * thread dropped meanwhile are not re-taken.  Pins beyond the slots (a
 * thread pinned in more than 64 domains at once) carry no domain: they
 * are all undone when the snapshot had none (or s is NULL), else kept. */
void conc__epoch_pins_restore(const conc__epoch_pins *s);

struct conc_epoch;
struct conc_epoch_node;

/*
 * Debug-checks builds (base/check.h): whether d is a live domain, for the
 * containers' create_in (EINVAL for a destroyed one); and the count of
 * queues and stacks that reclaim through d, +1 at their create, -1 at their
 * destroy, so that conc_epoch_destroy refuses (EBUSY) a domain still in use.
 * Other builds: always alive, nothing counted.
 */
#ifdef CONC_DEBUG_CHECKS
bool conc__epoch_alive(const struct conc_epoch *d);
void conc__epoch_users_add(struct conc_epoch *d, long delta);
#define CONC__EPOCH_ALIVE(d) conc__epoch_alive(d)
#define CONC__EPOCH_USERS_ADD(d, delta) conc__epoch_users_add((d), (delta))
#else
#define CONC__EPOCH_ALIVE(d) true
#define CONC__EPOCH_USERS_ADD(d, delta) ((void)0)
#endif

/*
 * conc__epoch_retire_batch - the hook for a caller that retires objects in
 * batches under one epoch node (the stack's node cache, stack/nodecache.c).
 *
 * Exactly conc_epoch_retire(d, n, fn): fn(n) runs once, on some thread,
 * after a grace period of d that began after this call, with the same
 * ordering (everything the caller did before the call happens before
 * fn).  The difference is `weight`, the number of objects n stands for
 * (>= 1): the call counts as `weight` retires towards the advance policy
 * above (ADVANCE_EVERY, ADVANCE_MAX), so that a thread retiring a batch of
 * 64 objects per node tries to advance as often as one retiring them one by
 * one, and the bound of about GRACE x ADVANCE_MAX retired objects held per
 * thread still counts objects, not nodes.  weight changes no ordering and
 * no count that anything else reads; an approximate weight (the node cache
 * rounds the orphans it takes along to one batch) only moves an advance
 * attempt earlier or later.
 */
void conc__epoch_retire_batch(struct conc_epoch *d, struct conc_epoch_node *n,
			      void (*fn)(struct conc_epoch_node *), unsigned weight);

#endif
