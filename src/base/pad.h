/*
 * pad.h - cache-line alignment and padding.
 *
 * CONC_ALIGNED puts an object at the start of its own CONC_PAD-byte block;
 * CONC_PAD_AFTER(T) is the byte count that rounds sizeof(T) up to the block,
 * for use in "char pad[CONC_PAD_AFTER(...)]" members.
 */
#ifndef CONC_INTERNAL_PAD_H
#define CONC_INTERNAL_PAD_H

#include <stddef.h>
#include <stdlib.h>

#include "base/arch.h"

#define CONC_ALIGNED _Alignas(CONC_PAD)
#define CONC_PAD_AFTER(size) (CONC_PAD - ((size) % CONC_PAD))

/* Round n up to a multiple of a (a power of two). */
static inline size_t conc__round_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

#endif
