/*
 * chan_internal.h - hooks into the channels (src/chan/chan.c) for the
 * tests and the bench binaries only; not installed, not part of the API.
 */
#ifndef CONC_CHAN_INTERNAL_H
#define CONC_CHAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/chan.h"

/* Waiter entries registered on c right now for sends (send true) or
 * receives: a test waits for this to reach k instead of sleeping. */
size_t conc__chan_waiters(conc_chan *c, bool send);

#endif
