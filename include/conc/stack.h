/*
 * conc/stack.h - LIFO stack (Treiber), lock-free.
 * (Declarations fixed by shared/DESIGN.md; full documentation: issue 4.)
 */
#ifndef CONC_STACK_H
#define CONC_STACK_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/epoch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_stack conc_stack;

int conc_stack_create(conc_stack **out);
int conc_stack_create_in(conc_stack **out, conc_epoch *d);
void conc_stack_destroy(conc_stack *q, void (*drop)(void *item));
int conc_stack_push(conc_stack *q, void *item);
bool conc_stack_try_pop(conc_stack *q, void **item);
int conc_stack_pop(conc_stack *q, void **item);
int conc_stack_pop_timeout(conc_stack *q, void **item, uint64_t timeout_ns);
void conc_stack_close(conc_stack *q);
bool conc_stack_is_empty(conc_stack *q);

#ifdef __cplusplus
}
#endif

#endif
