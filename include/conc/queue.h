/*
 * conc/queue.h - unbounded MPMC FIFO queue (Michael-Scott), lock-free.
 * (Declarations fixed by shared/DESIGN.md; full documentation: issue 4.)
 */
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/epoch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_queue conc_queue;

int conc_queue_create(conc_queue **out);
int conc_queue_create_in(conc_queue **out, conc_epoch *d);
void conc_queue_destroy(conc_queue *q, void (*drop)(void *item));
int conc_queue_push(conc_queue *q, void *item);
bool conc_queue_try_pop(conc_queue *q, void **item);
int conc_queue_pop(conc_queue *q, void **item);
int conc_queue_pop_timeout(conc_queue *q, void **item, uint64_t timeout_ns);
void conc_queue_close(conc_queue *q);
bool conc_queue_is_empty(conc_queue *q);

#ifdef __cplusplus
}
#endif

#endif
