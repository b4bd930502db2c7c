/*
 * epoch.h (internal) - what other parts of libconc ask the epoch core.
 */
#ifndef CONC_INTERNAL_EPOCH_H
#define CONC_INTERNAL_EPOCH_H

#include <stdbool.h>

/* Whether the calling thread is pinned in any domain (records and the
 * shared path alike): a thread that ran user code and comes back pinned
 * must not be handed to the next user (scope's thread cache). */
bool conc__epoch_pinned_anywhere(void);

#endif
