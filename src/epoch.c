/*
 * epoch.c - TEMPORARY STAND-IN for the epoch core (issue 3 replaces it).
 *
 * Correct but slow: a domain counts its pinned threads; retired callbacks
 * wait on a mutex-protected list and run only when the count is seen at
 * zero after they were retired (then every thread pinned at retire time has
 * unpinned).  Lets the containers be built and tested before the real EBR.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "conc/epoch.h"
#include "internal/fault.h"

struct conc_epoch {
	pthread_mutex_t lock;
	conc_epoch_node *list;
	atomic_uint active;
	atomic_uint_fast64_t retired, freed;
	int is_global;
};

static conc_epoch global_domain = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 1};

#define SLOTS 16
static _Thread_local struct {
	conc_epoch *d;
	unsigned depth;
} slots[SLOTS];

static unsigned *depth_of(conc_epoch *d)
{
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].d == d)
			return &slots[i].depth;
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].depth == 0) {
			slots[i].d = d;
			return &slots[i].depth;
		}
	return NULL; /* stand-in limit */
}

conc_epoch *conc_epoch_global(void) { return &global_domain; }

int conc_epoch_create(conc_epoch **out)
{
	if (!out)
		return EINVAL;
	conc_epoch *d = conc__calloc(1, sizeof *d);
	if (!d)
		return ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static void run_list(conc_epoch *d, conc_epoch_node *n)
{
	while (n) {
		conc_epoch_node *next = n->next;
		n->fn(n);
		atomic_fetch_add(&d->freed, 1);
		n = next;
	}
}

static void collect(conc_epoch *d)
{
	pthread_mutex_lock(&d->lock);
	conc_epoch_node *l = d->list;
	d->list = NULL;
	pthread_mutex_unlock(&d->lock);
	if (!l)
		return;
	if (atomic_load(&d->active) == 0) {
		run_list(d, l);
		return;
	}
	conc_epoch_node *t = l;
	while (t->next)
		t = t->next;
	pthread_mutex_lock(&d->lock);
	t->next = d->list;
	d->list = l;
	pthread_mutex_unlock(&d->lock);
}

int conc_epoch_destroy(conc_epoch *d)
{
	if (!d || d->is_global)
		return EINVAL;
	if (atomic_load(&d->active))
		return EBUSY;
	for (;;) {
		pthread_mutex_lock(&d->lock);
		conc_epoch_node *l = d->list;
		d->list = NULL;
		pthread_mutex_unlock(&d->lock);
		if (!l)
			break;
		run_list(d, l);
	}
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].d == d)
			slots[i].d = NULL;
	pthread_mutex_destroy(&d->lock);
	free(d);
	return 0;
}

int conc_epoch_register(conc_epoch *d) { return d ? 0 : EINVAL; }

void conc_epoch_pin(conc_epoch *d)
{
	unsigned *depth = depth_of(d);
	if ((*depth)++ == 0)
		atomic_fetch_add(&d->active, 1);
}

void conc_epoch_unpin(conc_epoch *d)
{
	unsigned *depth = depth_of(d);
	if (--(*depth) == 0) {
		atomic_fetch_sub(&d->active, 1);
		collect(d);
	}
}

bool conc_epoch_is_pinned(conc_epoch *d)
{
	unsigned *depth = depth_of(d);
	return depth && *depth > 0;
}

void conc_epoch_retire(conc_epoch *d, conc_epoch_node *n, void (*fn)(conc_epoch_node *))
{
	n->fn = fn;
	atomic_fetch_add(&d->retired, 1);
	pthread_mutex_lock(&d->lock);
	n->next = d->list;
	d->list = n;
	pthread_mutex_unlock(&d->lock);
}

struct deferred {
	conc_epoch_node node;
	void (*fn)(void *);
	void *arg;
};

static void run_deferred(conc_epoch_node *n)
{
	struct deferred *x = (struct deferred *)n;
	x->fn(x->arg);
	free(x);
}

int conc_epoch_defer(conc_epoch *d, void (*fn)(void *), void *arg)
{
	if (!d || !fn)
		return EINVAL;
	struct deferred *x = conc__malloc(sizeof *x);
	if (!x)
		return ENOMEM;
	x->fn = fn;
	x->arg = arg;
	conc_epoch_retire(d, &x->node, run_deferred);
	return 0;
}

void conc_epoch_flush(conc_epoch *d) { collect(d); }

int conc_epoch_barrier(conc_epoch *d)
{
	if (!d)
		return EINVAL;
	if (conc_epoch_is_pinned(d))
		return EDEADLK;
	uint64_t target = atomic_load(&d->retired);
	while (atomic_load(&d->freed) < target) {
		collect(d);
		sched_yield();
	}
	return 0;
}

void conc_epoch_get_stats(conc_epoch *d, conc_epoch_stats *out)
{
	out->epoch = 0;
	out->retired = atomic_load(&d->retired);
	out->freed = atomic_load(&d->freed);
	out->pending = out->retired - out->freed;
	out->registered = 0;
	out->stalling = 0;
}
