/*
 * conc/parallel.h - fork-join and parallel loops on a pool.
 * (Declarations fixed by shared/DESIGN.md; full documentation: issue 7.)
 */
#ifndef CONC_PARALLEL_H
#define CONC_PARALLEL_H

#include <stddef.h>

#include "conc/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

int conc_join(conc_pool *p, void (*a)(void *), void *actx,
	      void (*b)(void *), void *bctx);
int conc_parallel_for(conc_pool *p, size_t begin, size_t end, size_t grain,
		      int (*body)(size_t lo, size_t hi, void *ctx), void *ctx);
int conc_parallel_reduce(conc_pool *p, size_t begin, size_t end, size_t grain,
			 void *result, size_t size,
			 void (*identity)(void *acc, void *ctx),
			 int (*body)(size_t lo, size_t hi, void *acc, void *ctx),
			 void (*combine)(void *acc, const void *other, void *ctx),
			 void *ctx);

#ifdef __cplusplus
}
#endif

#endif
