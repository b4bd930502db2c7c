/*
 * epoch.h (internal) - what other parts of libconc ask the epoch core.
 */
#ifndef CONC_INTERNAL_EPOCH_H
#define CONC_INTERNAL_EPOCH_H

#include <stdbool.h>

/* A node retired at epoch t runs once the domain's epoch reaches t + GRACE
 * (src/epoch.c proves why 3). */
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

struct conc_epoch;
struct conc_epoch_node;

/* conc_epoch_retire for a node that stands for `weight` objects (a batch):
 * it counts as that many retires towards the advance policy above. */
void conc__epoch_retire_weighted(struct conc_epoch *d, struct conc_epoch_node *n,
				 void (*fn)(struct conc_epoch_node *), unsigned weight);

#endif
