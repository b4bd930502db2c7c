/*
 * conc/pool.h - thread pool: work-stealing workers, an injector, parking.
 * (Declarations fixed by shared/DESIGN.md; full documentation: issue 5.)
 */
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include <stddef.h>

#include "conc/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_pool conc_pool;

typedef struct conc_pool_config {
	unsigned threads;  /* 0: conc_cpu_count() */
	const char *name;  /* NULL: "conc-pool"; threads are "<name>-<index>" */
	size_t stack_size; /* 0: the system default */
	size_t max_queued; /* 0: no bound */
	void (*on_start)(unsigned index, void *ctx);
	void (*on_stop)(unsigned index, void *ctx);
	void *ctx;
} conc_pool_config;

int conc_pool_create(conc_pool **out, const conc_pool_config *cfg);
conc_pool *conc_pool_global(void);
int conc_pool_execute(conc_pool *p, void (*fn)(void *), void *arg);
int conc_pool_wait(conc_pool *p);
unsigned conc_pool_threads(conc_pool *p);
size_t conc_pool_queued(conc_pool *p);
unsigned conc_pool_active(conc_pool *p);
int conc_pool_resize(conc_pool *p, unsigned threads);
int conc_pool_destroy(conc_pool *p);

#ifdef __cplusplus
}
#endif

#endif
