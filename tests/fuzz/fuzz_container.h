/*
 * fuzz_container.h - the libFuzzer driver fuzz_queue.c and fuzz_stack.c
 * share: the input bytes become a single-threaded sequence of calls on one
 * container, checked call by call against a reference model (an array used
 * as a deque for FIFO, as a stack for LIFO).  A mismatch prints what
 * differed and traps: this is a test, the library itself never aborts.
 *
 * Each input byte is one operation: the low 3 bits pick it, the high 5 bits
 * (arg, 0..31) parameterise it.  Bulk pushes and pops (up to 1024 items for
 * the queue) let short inputs cross its 1024-slot segment boundaries; the
 * stack's (up to 256) span several of its 64-node batches.  The first
 * byte picks the epoch domain (global or a private one) and whether the
 * final destroy drops the items that are left.
 */
#ifndef CONC_FUZZ_CONTAINER_H
#define CONC_FUZZ_CONTAINER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "conc/epoch.h"
#include "adapters.h"

typedef struct fz_ops {
	const tl_container *ops; /* the calls (tests/lib/adapters.h) */
	unsigned bulk_max; /* the largest bulk push/pop (see the encoding) */
} fz_ops;

static const fz_ops FZ;

#define FZ_CHECK(cond, ...)                                                     \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "fuzz mismatch (%s, op %zu): ", FZ.ops->name, fz_at); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			__builtin_trap();                                       \
		}                                                               \
	} while (0)

/* Room for the items of 256 bulk pushes (-max_len=64 needs 64 x 1024);
 * pushes beyond it are skipped, so a longer input is still safe. */
#define FZ_CAP (1u << 18)

/* The model: items model[head..tail), oldest first. */
static uintptr_t fz_model[FZ_CAP];
static size_t fz_head, fz_tail;
static bool fz_closed;
static uintptr_t fz_next; /* the next item value; 0 is pushed too (NULL) */
static size_t fz_at;      /* the input byte being run, for messages */

/* What destroy's drop callback saw, compared after the destroy. */
static uintptr_t fz_dropped[FZ_CAP];
static size_t fz_ndropped;

static void fz_drop(void *item)
{
	if (fz_ndropped < FZ_CAP)
		fz_dropped[fz_ndropped] = (uintptr_t)item;
	fz_ndropped++;
}

static size_t fz_len(void) { return fz_tail - fz_head; }

/* The item the spec says a pop returns now (model not empty). */
static uintptr_t fz_model_pop(void)
{
	return !FZ.ops->fifo ? fz_model[--fz_tail] : fz_model[fz_head++];
}

static void *fz_new(conc_epoch *d)
{
	void *c = NULL;
	int rc = d ? FZ.ops->create_in(&c, d) : FZ.ops->create(&c);
	FZ_CHECK(rc == 0 && c, "create: %d", rc);
	fz_head = fz_tail = 0;
	fz_closed = false;
	return c;
}

/* Destroy (dropping or not) and check the drop order: FIFO from the head
 * for the queue, top down for the stack. */
static void fz_destroy(void *c, bool drop)
{
	fz_ndropped = 0;
	FZ.ops->destroy(c, drop ? fz_drop : NULL);
	if (!drop) {
		FZ_CHECK(fz_ndropped == 0, "destroy(NULL drop) dropped %zu", fz_ndropped);
		return;
	}
	FZ_CHECK(fz_ndropped == fz_len(), "destroy dropped %zu items, model holds %zu",
		 fz_ndropped, fz_len());
	for (size_t k = 0; k < fz_ndropped; k++) {
		uintptr_t want = fz_model_pop();
		FZ_CHECK(fz_dropped[k] == want, "drop #%zu: %lu, model %lu", k,
			 (unsigned long)fz_dropped[k], (unsigned long)want);
	}
}

/* One pop whose outcome the model predicts; how = 0 try_pop, 1
 * pop_timeout(ns), 2 pop (only called when it cannot block forever). */
static void fz_pop_one(void *c, int how, uint64_t ns)
{
	void *item = (void *)(uintptr_t)0xdead;
	bool empty = fz_len() == 0;
	int rc;
	if (how == 0)
		rc = FZ.ops->try_pop(c, &item) ? 0 : EAGAIN;
	else if (how == 1)
		rc = FZ.ops->pop_timeout(c, &item, ns);
	else
		rc = FZ.ops->pop(c, &item);
	if (empty) {
		int want = how == 0 ? EAGAIN : fz_closed ? EPIPE : ETIMEDOUT;
		FZ_CHECK(rc == want, "pop (%d) on an empty container: %d, want %d", how, rc, want);
		FZ_CHECK(item == (void *)(uintptr_t)0xdead, "pop (%d) that failed wrote *item", how);
		return;
	}
	uintptr_t want = fz_model_pop();
	FZ_CHECK(rc == 0, "pop (%d) with %zu items: %d", how, fz_len() + 1, rc);
	FZ_CHECK((uintptr_t)item == want, "pop (%d): %lu, model %lu", how,
		 (unsigned long)(uintptr_t)item, (unsigned long)want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	conc_epoch *d = NULL;
	if (data[0] & 1) {
		int rc = conc_epoch_create(&d);
		FZ_CHECK(rc == 0 && d, "conc_epoch_create: %d", rc);
	}
	bool final_drop = data[0] & 2;
	fz_next = 0;
	void *c = fz_new(d);
	for (fz_at = 1; fz_at < size; fz_at++) {
		unsigned op = data[fz_at] & 7, arg = data[fz_at] >> 3;
		/* arg 28..31: a bulk of 16, 64, 256, 1024 up to FZ.bulk_max
		 * (pops stop at the first empty one) */
		unsigned n = arg >= 28 ? 16u << 2 * (arg - 28) : 1;
		if (n > FZ.bulk_max)
			n = FZ.bulk_max;
		switch (op) {
		case 0: /* push */
		case 1:
			for (unsigned i = 0; i < n && fz_tail < FZ_CAP; i++) {
				uintptr_t v = fz_next++;
				int rc = FZ.ops->push(c, (void *)v);
				if (fz_closed) {
					FZ_CHECK(rc == EPIPE, "push after close: %d", rc);
					break; /* more would only repeat it */
				} else {
					FZ_CHECK(rc == 0, "push: %d", rc);
					fz_model[fz_tail++] = v;
				}
			}
			break;
		case 2: /* try_pop */
			for (unsigned i = 0; i < n && (i == 0 || fz_len()); i++)
				fz_pop_one(c, 0, 0);
			break;
		case 3: /* pop_timeout: 0 (a try), rarely 1 ns (on an empty
			 * container that spins, then sleeps: costly per run) */
			for (unsigned i = 0; i < n && (i == 0 || fz_len()); i++)
				fz_pop_one(c, 1, arg == 27 ? 1 : 0);
			break;
		case 4: /* pop: only where it returns at once */
			for (unsigned i = 0; i < n && (fz_len() || (fz_closed && i == 0)); i++)
				fz_pop_one(c, 2, 0);
			break;
		case 5: /* close, idempotent */
			FZ.ops->close(c);
			fz_closed = true;
			break;
		case 6: { /* is_empty: exact single-threaded */
			bool e = FZ.ops->is_empty(c);
			FZ_CHECK(e == (fz_len() == 0), "is_empty %d with %zu items", e, fz_len());
			break;
		}
		case 7: /* destroy (dropping or not), then a fresh one */
			if (arg % 4 == 0) {
				fz_destroy(c, arg & 4);
				c = fz_new(d);
			} else if (fz_tail < FZ_CAP) { /* a push/pop pair */
				uintptr_t v = fz_next++;
				int rc = FZ.ops->push(c, (void *)v);
				FZ_CHECK(rc == (fz_closed ? EPIPE : 0), "push: %d", rc);
				if (!rc)
					fz_model[fz_tail++] = v;
				fz_pop_one(c, 0, 0);
			}
			break;
		}
	}
	fz_destroy(c, final_drop);
	/* What the input retired is freed before it ends, so libFuzzer's
	 * per-input leak check (mallocs != frees) fires on real leaks only. */
	int brc = conc_epoch_barrier(conc_epoch_global());
	FZ_CHECK(brc == 0, "conc_epoch_barrier: %d", brc);
	if (d) {
		int rc = conc_epoch_destroy(d);
		FZ_CHECK(rc == 0, "conc_epoch_destroy: %d", rc);
	}
	return 0;
}

#endif
