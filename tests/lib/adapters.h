/*
 * adapters.h - the queue and the stack behind one table of calls, for
 * the tests that run the same code against both (container_tests.h,
 * stress_container.h, fuzz/fuzz_container.h, lifecycle_containers.c).
 * Written once here; each of those adds only what is its own (the
 * lincheck spec, the fuzzer's bulk size...).  No cmocka: the fuzz targets
 * use it too.
 */
#ifndef CONC_TEST_ADAPTERS_H
#define CONC_TEST_ADAPTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/epoch.h"

typedef struct tl_container {
	const char *name; /* "queue" / "stack" */
	bool fifo;        /* the queue: FIFO; the stack: LIFO */
	/* c == NULL is passed on as a NULL out-parameter (EINVAL); *c is
	 * written only on success */
	int (*create)(void **c);
	int (*create_in)(void **c, conc_epoch *d);
	void (*destroy)(void *c, void (*drop)(void *));
	int (*push)(void *c, void *item);
	int (*push_n)(void *c, void *const *items, size_t n); /* one batch */
	bool (*try_pop)(void *c, void **item);
	int (*pop)(void *c, void **item);
	int (*pop_timeout)(void *c, void **item, uint64_t ns);
	void (*close)(void *c);
	bool (*is_empty)(void *c);
	unsigned (*sleepers)(void *c); /* threads asleep in a pop */
} tl_container;

extern const tl_container tl_queue, tl_stack;

#endif
