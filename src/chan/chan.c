/*
 * chan.c - channels (bounded, unbounded, rendezvous) and select.
 *
 * Flavours.
 *   bounded     Vyukov's bounded MPMC array as crossbeam-channel's array
 *               flavour has it: `cap` slots, each a stamp and an item;
 *               head and tail are positions (lap | index), the tail
 *               carries MARK once closed.  A send at tail t finds stamp t
 *               (free), CASes tail to t+1, writes the item and stores stamp
 *               t+1; a receive at head h finds stamp h+1, CASes head, reads
 *               the item and stores h+lap (free for the next lap).  Full:
 *               stamp == t-lap+1; empty: stamp == h.
 *               LP send: the tail CAS; receive: the head CAS; close: the
 *               fetch_or of MARK into tail (a send that reads MARK fails,
 *               one that claimed its position before completes).
 *   unbounded   a conc_queue (conc/queue.h): send = push, receive =
 *               try_pop; plus two counters on lines of their own (`sent`,
 *               bumped by senders after their push, `recvd`, by receivers
 *               after their pop) for the length and for a waiter's
 *               readiness check.  send_many of more than one item is one
 *               conc_queue_push_n (u_send_many).
 *   rendezvous  no buffer: a short spinlock guards two lists of waiting
 *               senders and receivers; a send hands its item to a waiting
 *               receiver or waits in the list until a receiver takes it
 *               (crossbeam-channel's zero flavour).  LP: the CAS that
 *               selects the partner's context, under the lock.
 *
 * Waiting (every flavour, single calls and select alike).  A blocking call
 * first tries its operation(s), spins a few rounds with backoff (a single
 * operation only while no other thread waits in the same list: behind
 * others - parking_lot's rule - it goes on to register at once, and after
 * registering yields twice instead of pausing, so that on an
 * oversubscribed machine the waiters leave the CPU to the thread that will
 * end their wait; perf showed a third of W7a's CPU at P = 8 in the pause
 * loops), and then sleeps: it puts a context on its stack (`sel`: WAITING, ABORTED, or the
 * entry that was chosen; `state`: the futex word) and one entry per
 * operation in the channel's waker list for that direction (`sendw` for
 * sends, `recvw` for receives), then re-checks every operation, then
 * sleeps on `state`.  Whoever wakes it first claims the context with a CAS
 * of `sel` from WAITING to its own entry - one shared word per call, so at
 * most one claimer ever wins: exactly one operation of a select completes.
 * For a rendezvous the claimer completes the hand-over itself (it takes the
 * sender's item, or gives the receiver its item, `completed`); for the
 * other flavours the claim only says "retry that operation", and the waker
 * then tries it first (so a notification it absorbed is used, not lost).
 * A waiter that leaves on its own (ready on the re-check, deadline) claims
 * itself with WAITING -> ABORTED; when that CAS fails it was claimed first
 * and honours the claim.
 *
 * Why no wake-up is lost (bounded and unbounded; store-buffering).
 *   waiter:    register (under the waker's lock, then the seq_cst store
 *              nonempty = true); seq_cst fence; re-check (load the
 *              indexes / the counters / the MARK or closed flag).
 *   publisher: the seq_cst RMW that moves the index (bounded: a send's
 *              tail CAS, a receive's head CAS; unbounded: the RMW of
 *              `sent`; close: its RMW/store), then (after the release
 *              store of the stamp) a seq_cst load of nonempty; when
 *              true, lock and claim one waiting entry.
 * In the single order S of seq_cst operations, if the waiter's re-check
 * does not see the publication then the waiter's fence precedes the
 * publishing RMW in S, so the publisher's later load of nonempty comes
 * after the waiter's store of true, and sees it (nonempty is reset to
 * false only when the list is empty, and our entry stays in it until we
 * are claimed or leave).  So either the waiter sees the item (or free
 * slot) and does not sleep, or the publisher sees the waiter and claims
 * it.  The claim and the sleep meet on `state`: the claimer exchanges it
 * to 1 and calls FUTEX_WAKE when it was 2 (asleep); the waiter CASes it
 * 0 -> 2 before FUTEX_WAIT(2), which the kernel refuses once it is 1.
 * Rendezvous and close need no fences: registration, partner search and
 * close all happen under the lock they share (close of a bounded or
 * unbounded channel sets its flag first and then takes both waker locks,
 * so a waiter that registered before is woken and one after sees it).
 *
 * A notification claims one waiter (notify_one); the claimed waiter tries
 * that operation first: it either takes the item it was told of or finds
 * it taken by someone else, who consumed it - either way nothing waits for
 * an item that is there.  A waiter whose deadline passes after being
 * claimed still tries the claimed operation once.
 *
 * Entries live on the waiter's stack: a waiter leaves only after its
 * context is claimed (then it waits until the claimer has set state to 1,
 * the claimer's last access but the futex wake, which only hashes the
 * address) or after it removed each of its entries under the lists' locks.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef CONC_DEBUG_CHECKS
#include <unistd.h>
#endif

#include "conc/chan.h"
#include "conc/queue.h"
#include "base/arch.h"
#include "base/atomics.h"
#include "base/backoff.h"
#include "base/check.h"
#include "base/chaos.h"
#include "base/clock.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/prng.h"
#include "chan/chan_internal.h"

enum { K_ZERO, K_BOUNDED, K_UNBOUNDED };

#define AGAIN (-1)         /* internal: not ready now */
#define SEL_WAITING ((uintptr_t)0)
#define SEL_ABORTED ((uintptr_t)1)
#define SPIN_ROUNDS 10     /* backoff rounds before sleeping: 7 spins, 3 yields */
#define SLEEP_SPIN 11      /* backoff rounds on `state` after registering: 7 spins, 4 yields */
#define SELECT_STACK 16    /* ops a select handles without allocating */

struct ctx {
	_Atomic(uintptr_t) sel; /* SEL_WAITING, SEL_ABORTED or the chosen entry */
	atomic_uint state;      /* 0 waiting, 2 asleep, 1 the claimer is done */
};

struct entry {
	struct ctx *ctx;
	struct entry *prev, *next; /* in a waker list, under its lock */
	struct entry *wnext;       /* close's list of entries to wake */
	void *item;                /* rendezvous: the send's item / the received one */
	size_t op;                 /* index in the caller's ops */
	bool linked;               /* under the list's lock */
	bool completed;            /* rendezvous hand-over done by the claimer */
};

struct waker {
	atomic_bool lock;
	atomic_bool nonempty; /* some entry is linked: seq_cst, see the top */
	struct entry *head, *tail;
#ifdef CONC_DEBUG_CHECKS
	/* the process of the last registration: in a fork child, entries
	 * registered in the parent belong to threads the child does not have,
	 * and destroy (all the child may do with the channel, conc/chan.h)
	 * is not a misuse for them */
	atomic_int reg_pid;
#endif
};

struct slot {
	_Atomic(uint64_t) stamp;
	void *item;
};

struct conc_chan {
	CONC__LIFE_FIELD /* debug-checks builds: alive or dead (base/check.h) */
	int kind;
	size_t cap;
	/* bounded */
	uint64_t one_lap, mark;
	struct slot *slots;
	/* unbounded */
	conc_queue *q;
	atomic_bool closed;
	CONC_ALIGNED _Atomic(uint64_t) head; /* bounded: position; unbounded: unused */
	CONC_ALIGNED _Atomic(uint64_t) tail;
	CONC_ALIGNED _Atomic(uint64_t) sent;  /* unbounded */
	CONC_ALIGNED _Atomic(uint64_t) recvd; /* unbounded */
	CONC_ALIGNED struct waker sendw;      /* waiting senders (rendezvous: also the lock) */
	CONC_ALIGNED struct waker recvw;      /* waiting receivers */
};

/* ---- wakers ---------------------------------------------------------- */

static void wlock(struct waker *w)
{
	conc__backoff b = CONC__BACKOFF_INIT;
	/* acquire: the list as the last holder left it */
	while (atomic_exchange_explicit(&w->lock, true, memory_order_acquire)) {
		do
			conc__backoff_spin(&b);
		while (atomic_load_explicit(&w->lock, memory_order_relaxed));
	}
}

static void wunlock(struct waker *w)
{
	atomic_store_explicit(&w->lock, false, memory_order_release);
}

static void list_add(struct waker *w, struct entry *e)
{
	e->next = NULL;
	e->prev = w->tail;
	if (w->tail)
		w->tail->next = e;
	else
		w->head = e;
	w->tail = e;
	e->linked = true;
#ifdef CONC_DEBUG_CHECKS
	atomic_store_explicit(&w->reg_pid, (int)getpid(), memory_order_relaxed);
#endif
	/* seq_cst: the waiter's half of the store-buffering argument */
	atomic_store_explicit(&w->nonempty, true, memory_order_seq_cst);
}

static void list_del(struct waker *w, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		w->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		w->tail = e->prev;
	e->linked = false;
	if (!w->head)
		atomic_store_explicit(&w->nonempty, false, memory_order_relaxed);
}

/* Claim e's context for e: true when this call won it. */
static bool ctx_claim(struct entry *e)
{
	uintptr_t exp = SEL_WAITING;
	/* acq_rel: acquire the waiter's entry fields (written before its
	 * registration, which the lock orders anyway); release ours. */
	return atomic_compare_exchange_strong_explicit(&e->ctx->sel, &exp, (uintptr_t)e,
						       memory_order_acq_rel, memory_order_relaxed);
}

/* The claimer is done with the claimed context (and its entries). */
static void ctx_wake(struct ctx *x)
{
	/* release: what we wrote into the entry (a rendezvous item) is seen
	 * by the waiter's acquire of state == 1.  After this the context may
	 * be gone; the futex wake only hashes the address. */
	if (atomic_exchange_explicit(&x->state, 1, memory_order_acq_rel) == 2)
		conc__futex_wake(&x->state, 1);
}

/* Wake one waiting entry of w, if any (a publication's notify). */
static void waker_notify_one(struct waker *w)
{
	if (conc__likely(!atomic_load_explicit(&w->nonempty, memory_order_seq_cst)))
		return;
	struct ctx *woken = NULL;
	wlock(w);
	for (struct entry *e = w->head; e; e = e->next) {
		if (ctx_claim(e)) {
			list_del(w, e);
			woken = e->ctx;
			break;
		}
	}
	wunlock(w);
	if (woken)
		ctx_wake(woken);
}

/* Claim and unlink every entry of w (caller holds w's lock); returns the
 * claimed ones chained through wnext, to wake after unlocking. */
static struct entry *list_take_all(struct waker *w, struct entry *chain)
{
	struct entry *e = w->head;
	while (e) {
		struct entry *n = e->next;
		e->linked = false;
		if (ctx_claim(e)) {
			e->wnext = chain;
			chain = e;
		}
		e = n;
	}
	w->head = w->tail = NULL;
	atomic_store_explicit(&w->nonempty, false, memory_order_relaxed);
	return chain;
}

static void wake_chain(struct entry *e)
{
	while (e) {
		struct entry *n = e->wnext; /* before the wake: e may vanish */
		ctx_wake(e->ctx);
		e = n;
	}
}

static void waker_notify_all(struct waker *w)
{
	wlock(w);
	struct entry *chain = list_take_all(w, NULL);
	wunlock(w);
	wake_chain(chain);
}

/* ---- create, destroy, queries ------------------------------------------ */

static void waker_init(struct waker *w)
{
	atomic_init(&w->lock, false);
	atomic_init(&w->nonempty, false);
	w->head = w->tail = NULL;
#ifdef CONC_DEBUG_CHECKS
	atomic_init(&w->reg_pid, 0);
#endif
}

#ifdef CONC_DEBUG_CHECKS
/* Destroy's misuse check: an entry is linked, registered by a thread of
 * this process (every registration after a fork is the child's own, and
 * stores the child's pid). */
static bool waker_blocked(struct waker *w)
{
	return atomic_load_explicit(&w->nonempty, memory_order_relaxed) &&
	       atomic_load_explicit(&w->reg_pid, memory_order_relaxed) == (int)getpid();
}
#endif

int conc_chan_create(conc_chan **out, size_t capacity)
{
	if (!out)
		return EINVAL;
	conc_chan *c = conc__aligned_alloc("chan.create", CONC_PAD, sizeof *c);
	if (!c)
		return ENOMEM;
	memset((void *)c, 0, sizeof *c);
	CONC__LIFE_SET(c, CONC__LIFE_CHAN);
	c->cap = capacity;
	atomic_init(&c->closed, false);
	atomic_init(&c->head, 0);
	atomic_init(&c->tail, 0);
	atomic_init(&c->sent, 0);
	atomic_init(&c->recvd, 0);
	waker_init(&c->sendw);
	waker_init(&c->recvw);
	if (capacity == 0) {
		c->kind = K_ZERO;
	} else if (capacity == CONC_CHAN_UNBOUNDED) {
		c->kind = K_UNBOUNDED;
		int r = conc_queue_create(&c->q);
		if (r) {
			free(c);
			return r;
		}
	} else {
		c->kind = K_BOUNDED;
		/* positions: index below mark, MARK, lap above (crossbeam's
		 * layout); capacities no allocation could hold fail here before
		 * the power of two could overflow. */
		if (capacity > ((size_t)1 << 40)) {
			free(c);
			return ENOMEM;
		}
		uint64_t m = 1;
		while (m < (uint64_t)capacity + 1)
			m <<= 1;
		c->mark = m;
		c->one_lap = m << 1;
		c->slots = conc__malloc("chan.buffer", capacity * sizeof *c->slots);
		if (!c->slots) {
			free(c);
			return ENOMEM;
		}
		for (size_t i = 0; i < capacity; i++) {
			atomic_init(&c->slots[i].stamp, (uint64_t)i);
			c->slots[i].item = NULL;
		}
	}
	*out = c;
	return 0;
}

void conc_chan_destroy(conc_chan *c, void (*drop)(void *item))
{
	if (!c)
		return;
	CONC__LIFE_ABORT(c, CONC__LIFE_CHAN, "conc_chan_destroy");
	/* relaxed: a thread blocked in a call registered its entry before it
	 * slept (under the waker's lock); one that has returned is ordered
	 * before this call.  Entries of the parent's threads in a fork child
	 * do not count (waker_blocked). */
	CONC__MISUSE_IF(waker_blocked(&c->sendw) || waker_blocked(&c->recvw),
			"conc_chan_destroy",
			"a thread is blocked in a send, receive or select on this channel "
			"(destroy while in use)");
	CONC__LIFE_SET(c, CONC__LIFE_DEAD); /* a drop that calls back in: EINVAL */
	if (c->kind == K_UNBOUNDED) {
		conc_queue_destroy(c->q, drop);
	} else if (c->kind == K_BOUNDED) {
		if (drop) {
			/* nothing runs concurrently: the stamps tell which slots,
			 * from head on, hold an item */
			uint64_t h = atomic_load_explicit(&c->head, memory_order_acquire);
			for (;;) {
				struct slot *s = &c->slots[h & (c->mark - 1)];
				if (atomic_load_explicit(&s->stamp, memory_order_acquire) != h + 1)
					break;
				drop(s->item);
				uint64_t idx = h & (c->mark - 1);
				h = idx + 1 < c->cap ? h + 1 : (h & ~(c->one_lap - 1)) + c->one_lap;
			}
		}
		free(c->slots);
	}
	CONC__LIFE_FREE(c); /* debug-checks builds: quarantined, already dead */
}

size_t conc_chan_capacity(conc_chan *c)
{
	if (!c)
		return 0;
	CONC__LIFE_ABORT(c, CONC__LIFE_CHAN, "conc_chan_capacity");
	return c->cap;
}

bool conc_chan_is_closed(conc_chan *c)
{
	if (!c)
		return false;
	CONC__LIFE_ABORT(c, CONC__LIFE_CHAN, "conc_chan_is_closed");
	/* acquire: a caller that sees true also sees what the closer did */
	return atomic_load_explicit(&c->closed, memory_order_acquire);
}

size_t conc_chan_len(conc_chan *c)
{
	if (!c)
		return 0;
	CONC__LIFE_ABORT(c, CONC__LIFE_CHAN, "conc_chan_len");
	if (c->kind == K_ZERO)
		return 0;
	if (c->kind == K_UNBOUNDED) {
		/* recvd first: a pop counted after our load of recvd is then
		 * counted in sent too, so the difference never goes below 0
		 * for long; clamp the moment it does (counted out of order) */
		uint64_t r = atomic_load_explicit(&c->recvd, memory_order_seq_cst);
		uint64_t s = atomic_load_explicit(&c->sent, memory_order_seq_cst);
		return s > r ? (size_t)(s - r) : 0;
	}
	for (;;) {
		uint64_t t = atomic_load_explicit(&c->tail, memory_order_seq_cst);
		uint64_t h = atomic_load_explicit(&c->head, memory_order_seq_cst);
		/* a consistent pair: tail unchanged around the head load */
		if (atomic_load_explicit(&c->tail, memory_order_seq_cst) != t)
			continue;
		uint64_t hix = h & (c->mark - 1), tix = t & (c->mark - 1);
		if (hix < tix)
			return (size_t)(tix - hix);
		if (hix > tix)
			return (size_t)(c->cap - hix + tix);
		return (t & ~c->mark) == h ? 0 : c->cap;
	}
}

/* ---- bounded ------------------------------------------------------------ */

static inline uint64_t b_next(const conc_chan *c, uint64_t pos)
{
	uint64_t idx = pos & (c->mark - 1);
	return idx + 1 < c->cap ? pos + 1 : (pos & ~(c->one_lap - 1)) + c->one_lap;
}

static int b_try_send(conc_chan *c, void *item)
{
	conc__backoff b = CONC__BACKOFF_INIT;
	uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
	for (;;) {
		if (t & c->mark)
			return EPIPE;
		struct slot *s = &c->slots[t & (c->mark - 1)];
		/* acquire: the receiver that freed the slot is done with it */
		uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
		if (st == t) {
			/* LP: the tail CAS (fails on MARK too) */
			if (atomic_compare_exchange_weak_explicit(&c->tail, &t, b_next(c, t),
								  memory_order_seq_cst,
								  memory_order_relaxed)) {
				s->item = item;
				/* release: publishes the item.  (The wake-up
				 * argument's publishing write is the tail CAS.) */
				atomic_store_explicit(&s->stamp, t + 1, memory_order_release);
				waker_notify_one(&c->recvw);
				return 0;
			}
			conc__backoff_spin(&b);
		} else if (st + c->one_lap == t + 1) {
			/* the slot still holds the previous lap's item: full
			 * unless head moved meanwhile */
			conc_fence(memory_order_seq_cst);
			uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
			if (h + c->one_lap == t)
				return AGAIN;
			conc__backoff_spin(&b);
			t = atomic_load_explicit(&c->tail, memory_order_relaxed);
		} else {
			/* another sender claimed t and has not written yet, or
			 * our t is stale */
			conc__backoff_spin(&b);
			t = atomic_load_explicit(&c->tail, memory_order_relaxed);
		}
	}
}

static int b_try_recv(conc_chan *c, void **item)
{
	conc__backoff b = CONC__BACKOFF_INIT;
#if CONC__MUTANT(13) /* mutant 13: closed is final even with items left */
	if (atomic_load_explicit(&c->tail, memory_order_relaxed) & c->mark)
		return EPIPE;
#endif
	uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
	for (;;) {
		struct slot *s = &c->slots[h & (c->mark - 1)];
		/* acquire: pairs with the sender's store of the stamp */
		uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
		if (st == h + 1) {
			/* LP: the head CAS */
			if (atomic_compare_exchange_weak_explicit(&c->head, &h, b_next(c, h),
								  memory_order_seq_cst,
								  memory_order_relaxed)) {
				*item = s->item;
				/* release: frees the slot for the next lap's sender
				 * (the head CAS was the publishing write) */
				atomic_store_explicit(&s->stamp, h + c->one_lap, memory_order_release);
				waker_notify_one(&c->sendw);
				return 0;
			}
			conc__backoff_spin(&b);
		} else if (st == h) {
			conc_fence(memory_order_seq_cst);
			uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
			if ((t & ~c->mark) == h) {
				/* empty; closed and empty is final: MARK is set
				 * after every send that can still succeed claimed
				 * its position, and we saw none beyond h */
				return (t & c->mark) ? EPIPE : AGAIN;
			}
			/* a send claimed h and is about to write it */
			conc__backoff_spin(&b);
			h = atomic_load_explicit(&c->head, memory_order_relaxed);
		} else {
			conc__backoff_spin(&b);
			h = atomic_load_explicit(&c->head, memory_order_relaxed);
		}
	}
}

/* Ready checks for a registered waiter (after its fence): false only when
 * the operation would certainly not succeed now.  They read the indexes,
 * whose seq_cst CASes are the publishing writes of the wake-up argument
 * (a send's tail CAS, a receive's head CAS): the stamps follow with plain
 * release stores, so a waiter that sees an index moved but not yet the
 * stamp retries, and its try waits the moment out (as crossbeam's does). */
static bool b_send_ready(conc_chan *c)
{
	uint64_t t = atomic_load_explicit(&c->tail, memory_order_seq_cst);
	uint64_t h = atomic_load_explicit(&c->head, memory_order_seq_cst);
	return (t & c->mark) || h + c->one_lap != t; /* closed, or not full */
}

static bool b_recv_ready(conc_chan *c)
{
	uint64_t h = atomic_load_explicit(&c->head, memory_order_seq_cst);
	uint64_t t = atomic_load_explicit(&c->tail, memory_order_seq_cst);
	return (t & c->mark) || (t & ~c->mark) != h; /* closed, or not empty */
}

int conc_chan_force_send(conc_chan *c, void *item, bool *evicted, void **old)
{
	if (!c || !evicted || !old)
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	if (c->kind != K_BOUNDED)
		return EINVAL;
	conc__backoff b = CONC__BACKOFF_INIT;
	uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
	for (;;) {
		if (t & c->mark)
			return EPIPE;
		struct slot *s = &c->slots[t & (c->mark - 1)];
		uint64_t st = atomic_load_explicit(&s->stamp, memory_order_acquire);
		if (st == t) {
			if (atomic_compare_exchange_weak_explicit(&c->tail, &t, b_next(c, t),
								  memory_order_seq_cst,
								  memory_order_relaxed)) {
				s->item = item;
				atomic_store_explicit(&s->stamp, t + 1, memory_order_release);
				*evicted = false;
				waker_notify_one(&c->recvw);
				return 0;
			}
			conc__backoff_spin(&b);
		} else if (st + c->one_lap == t + 1) {
			/* Full at t: claim t anyway (LP, the tail CAS; it fails on
			 * MARK), then take the previous lap's item at h = t - lap
			 * out by moving head past it, as a receive would.  If a
			 * receiver moved head first, it frees the slot (stamp t)
			 * and the send lands as a plain one. */
			if (!atomic_compare_exchange_weak_explicit(&c->tail, &t, b_next(c, t),
								   memory_order_seq_cst,
								   memory_order_relaxed))
				continue;
			const uint64_t h0 = t - c->one_lap;
			uint64_t h = h0;
			conc__backoff_reset(&b);
			/* head < h0: an earlier force_send claimed the full
			 * position before ours and has not moved head off its
			 * own eviction yet (it is between its two CASes); wait
			 * for that, not for a receiver.  Positions only grow, so
			 * h < h0 tells the two cases apart. */
			while (!atomic_compare_exchange_strong_explicit(&c->head, &h, b_next(c, h0),
									memory_order_seq_cst,
									memory_order_relaxed) &&
			       h < h0) {
				conc__backoff_spin(&b);
				h = h0;
			}
			if (h == h0) {
				*old = s->item; /* stamp h0+1 was seen (acquire) */
				*evicted = true;
			} else {
				/* a receiver holds position h: wait for its release */
				conc__backoff_reset(&b);
				while (atomic_load_explicit(&s->stamp, memory_order_acquire) != t)
					conc__backoff_spin(&b);
				*evicted = false;
			}
			s->item = item;
			atomic_store_explicit(&s->stamp, t + 1, memory_order_release);
			if (!*evicted)
				waker_notify_one(&c->recvw);
			return 0;
		} else {
			conc__backoff_spin(&b);
			t = atomic_load_explicit(&c->tail, memory_order_relaxed);
		}
	}
}

/* ---- unbounded ------------------------------------------------------------ */

static int u_try_send(conc_chan *c, void *item)
{
	int r = conc_queue_push(c->q, item);
	if (r)
		return r; /* EPIPE, ENOMEM */
	/* seq_cst RMW: the publisher's store of the wake-up argument (the
	 * readiness check reads these counters) */
	atomic_fetch_add_explicit(&c->sent, 1, memory_order_seq_cst);
	waker_notify_one(&c->recvw);
	return 0;
}

/* send_many on an unbounded channel: the whole batch with one
 * conc_queue_push_n (one link for all n; all or nothing: EPIPE and ENOMEM
 * send none), then counted and announced as n sends would be. */
static int u_send_many(conc_chan *c, void *const *items, size_t n)
{
	int r = conc_queue_push_n(c->q, items, n);
	if (r)
		return r; /* EPIPE, ENOMEM: nothing sent */
	/* seq_cst RMW: as in u_try_send, for all n at once */
	atomic_fetch_add_explicit(&c->sent, n, memory_order_seq_cst);
	/* a waiting receiver per item, while any waits (seq_cst: the
	 * publisher's load of the wake-up argument, as in waker_notify_one) */
	for (size_t k = 0; k < n && atomic_load_explicit(&c->recvw.nonempty, memory_order_seq_cst);
	     k++)
		waker_notify_one(&c->recvw);
	return 0;
}

static int u_try_recv(conc_chan *c, void **item)
{
	if (conc_queue_try_pop(c->q, item))
		goto got;
	if (!atomic_load_explicit(&c->closed, memory_order_seq_cst))
		return AGAIN;
	/* closed is set after conc_queue_close returned, whose flag makes a
	 * later empty pop final (conc/queue.h): one more try decides */
	if (conc_queue_try_pop(c->q, item))
		goto got;
	return EPIPE;
got:
	atomic_fetch_add_explicit(&c->recvd, 1, memory_order_relaxed);
	return 0;
}

static bool u_recv_ready(conc_chan *c)
{
	if (atomic_load_explicit(&c->closed, memory_order_seq_cst))
		return true;
	/* sent is bumped after the push, recvd after the pop: an item whose
	 * sent is not counted yet will notify after counting it; a pending
	 * pop only makes us retry */
	uint64_t r = atomic_load_explicit(&c->recvd, memory_order_seq_cst);
	uint64_t s = atomic_load_explicit(&c->sent, memory_order_seq_cst);
	return s > r;
}

/* ---- rendezvous --------------------------------------------------------- */

/* The lock of a rendezvous channel is sendw's; both lists live under it.
 * Hand over to (or take from) a waiting partner; when there is none and reg
 * is not NULL, register reg in our own list under the same hold of the
 * lock (AGAIN then means "registered"). */
static int z_try_locked(conc_chan *c, bool send, void **item, struct ctx *self,
			struct entry *reg)
{
	struct waker *other = send ? &c->recvw : &c->sendw;
	struct entry *got = NULL;
	int r = AGAIN;
	wlock(&c->sendw);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
		r = EPIPE;
	} else {
		for (struct entry *e = other->head; e; e = e->next) {
			if (e->ctx == self)
				continue;
			if (ctx_claim(e)) {
				/* LP: the claim.  The hand-over is done under the
				 * lock; the partner reads it after state == 1. */
				if (send)
					e->item = *item;
				else
					*item = e->item;
				e->completed = true;
				list_del(other, e);
				got = e;
				r = 0;
				break;
			}
		}
		if (r == AGAIN && reg)
			list_add(send ? &c->sendw : &c->recvw, reg);
	}
	wunlock(&c->sendw);
	if (got)
		ctx_wake(got->ctx);
	return r;
}

static int z_try(conc_chan *c, bool send, void **item, struct ctx *self)
{
	return z_try_locked(c, send, item, self, NULL);
}

static bool z_ready(conc_chan *c, bool send, struct ctx *self)
{
	struct waker *other = send ? &c->recvw : &c->sendw;
	bool ready = false;
	wlock(&c->sendw);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
		ready = true;
	} else {
		for (struct entry *e = other->head; e; e = e->next) {
			if (e->ctx != self &&
			    atomic_load_explicit(&e->ctx->sel, memory_order_acquire) == SEL_WAITING) {
				ready = true;
				break;
			}
		}
	}
	wunlock(&c->sendw);
	return ready;
}

/* ---- one operation, whatever the flavour -------------------------------- */

static int op_try(conc_chan *c, bool send, void **item, struct ctx *self)
{
	switch (c->kind) {
	case K_BOUNDED:
		return send ? b_try_send(c, *item) : b_try_recv(c, item);
	case K_UNBOUNDED:
		return send ? u_try_send(c, *item) : u_try_recv(c, item);
	default:
		return z_try(c, send, item, self);
	}
}

static bool op_ready(conc_chan *c, bool send, struct ctx *self)
{
	switch (c->kind) {
	case K_BOUNDED:
		return send ? b_send_ready(c) : b_recv_ready(c);
	case K_UNBOUNDED:
		/* a send is always ready (it never waits) */
		return send ? true : u_recv_ready(c);
	default:
		return z_ready(c, send, self);
	}
}

/* Register e; true when another entry was waiting in the list already. */
static bool op_register(conc_chan *c, bool send, struct entry *e)
{
	struct waker *lockw = c->kind == K_ZERO ? &c->sendw : (send ? &c->sendw : &c->recvw);
	struct waker *w = send ? &c->sendw : &c->recvw;
	wlock(lockw);
	bool others = w->head != NULL;
	list_add(w, e);
	wunlock(lockw);
	return others;
}

static void op_unregister(conc_chan *c, bool send, struct entry *e)
{
	struct waker *lockw = c->kind == K_ZERO ? &c->sendw : (send ? &c->sendw : &c->recvw);
	struct waker *w = send ? &c->sendw : &c->recvw;
	wlock(lockw);
	if (e->linked)
		list_del(w, e);
	wunlock(lockw);
}

/* ---- waiting -------------------------------------------------------------- */

static _Thread_local uint64_t tl_rand;

static uint64_t *rand_state(void)
{
	if (conc__unlikely(tl_rand == 0))
		tl_rand = conc__rand_seed((uint64_t)(uintptr_t)&tl_rand ^ conc__now_ns());
	return &tl_rand;
}

/* One pass over the operations in `order`; the first that is not AGAIN
 * decides. */
static int try_pass(conc_select_op *ops, const size_t *order, size_t n, size_t *done)
{
	for (size_t k = 0; k < n; k++) {
		size_t i = order ? order[k] : k;
		int r = op_try(ops[i].chan, ops[i].send, &ops[i].item, NULL);
		if (r != AGAIN) {
			*done = i;
			return r;
		}
	}
	return AGAIN;
}

static void shuffle(size_t *order, size_t n)
{
	uint64_t *rs = rand_state();
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(conc__rand_next(rs) % (i + 1));
		size_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

/* Sleep until the context is claimed and its claimer done (state 1), or
 * the deadline passes (true).  Spins a little first: a partner or a
 * notifier often comes within microseconds. */
static bool ctx_sleep(struct ctx *x, uint64_t deadline, int rounds)
{
	/* crossbeam's snooze: 2^k pauses for k <= 6, then a few yields (the
	 * partner may be waiting for this core), then the futex */
	unsigned s = 0;
	conc__backoff b = CONC__BACKOFF_INIT;
	if (rounds < SLEEP_SPIN)
		b.step = CONC_BACKOFF_SPIN_SHIFT + 1; /* yields only */
	for (int k = 0; k < rounds; k++) {
		s = atomic_load_explicit(&x->state, memory_order_acquire);
		if (s)
			break;
		conc__backoff_spin(&b);
	}
	while (s != 1) {
		unsigned z = 0;
		if (s == 0 && !atomic_compare_exchange_strong_explicit(&x->state, &z, 2,
								       memory_order_acquire,
								       memory_order_acquire)) {
			s = z;
			continue;
		}
		if (!conc__futex_wait(&x->state, 2, deadline))
			return true;
		s = atomic_load_explicit(&x->state, memory_order_acquire);
	}
	return false;
}

/* Leave: claim ourselves (true: nobody claimed us) unless somebody claimed
 * us first; then *sel is the claiming entry and we wait for its claimer to
 * be done with us. */
static bool ctx_leave(struct ctx *x, uintptr_t *sel)
{
	*sel = SEL_WAITING;
	if (atomic_compare_exchange_strong_explicit(&x->sel, sel, SEL_ABORTED,
						    memory_order_acq_rel, memory_order_acquire))
		return true;
	conc__backoff bw = CONC__BACKOFF_INIT;
	while (atomic_load_explicit(&x->state, memory_order_acquire) != 1)
		conc__backoff_spin(&bw);
	return false;
}

/*
 * The whole protocol for n operations: tries, spins, registers, sleeps,
 * until one completes or the deadline (CONC__NO_DEADLINE: none; try:
 * timeout 0) passes.  order: a buffer of n indexes for the fair order, or
 * NULL (biased / a single op); ents: n entries.
 */
static int wait_ops(conc_select_op *ops, size_t n, bool try_only, uint64_t timeout_ns,
		    size_t *order, struct entry *ents, size_t *done)
{
	int r;
	if (order)
		shuffle(order, n);
	r = try_pass(ops, order, n, done);
	if (r != AGAIN)
		return r;
	if (try_only)
		return ETIMEDOUT;
	uint64_t deadline = conc__deadline_after(timeout_ns);
	conc__backoff b = CONC__BACKOFF_INIT;
	/* parking_lot's rule: spin only while no other thread waits for the
	 * same thing - when one does, the wait is not going to be short, and
	 * on an oversubscribed machine our spinning takes the CPU from the
	 * thread that would end it */
	struct waker *mine = ops[0].send ? &ops[0].chan->sendw : &ops[0].chan->recvw;
	for (int i = 0; i < SPIN_ROUNDS; i++) {
		if (n == 1 && atomic_load_explicit(&mine->nonempty, memory_order_relaxed))
			break;
		conc__backoff_spin(&b);
		if (order)
			shuffle(order, n);
		r = try_pass(ops, order, n, done);
		if (r != AGAIN)
			return r;
	}
	struct ctx x;
	for (;;) {
		atomic_init(&x.sel, SEL_WAITING);
		atomic_init(&x.state, 0);
		bool others = false;
		for (size_t i = 0; i < n; i++) {
			ents[i].ctx = &x;
			ents[i].item = ops[i].item;
			ents[i].op = i;
			ents[i].linked = false;
			ents[i].completed = false;
			others |= op_register(ops[i].chan, ops[i].send, &ents[i]);
		}
		/* the waiter's fence of the store-buffering argument */
		conc_fence(memory_order_seq_cst);
		conc__chaos_point();
		bool ready = false;
		for (size_t i = 0; i < n && !ready; i++)
			ready = op_ready(ops[i].chan, ops[i].send, &x);
		bool timed_out = false;
		/* behind other waiters of a single op (parking_lot's rule, as
		 * above): a couple of yields, no pause loop, then the futex */
		if (!ready)
			timed_out = ctx_sleep(&x, deadline, n == 1 && others ? 2 : SLEEP_SPIN);
		uintptr_t sel;
		bool aborted = ctx_leave(&x, &sel);
		for (size_t i = 0; i < n; i++)
			op_unregister(ops[i].chan, ops[i].send, &ents[i]);
		if (!aborted) {
			struct entry *e = (struct entry *)sel;
			size_t i = e->op;
			if (e->completed) {
				/* a rendezvous partner did the hand-over */
				if (!ops[i].send)
					ops[i].item = e->item;
				*done = i;
				return 0;
			}
			/* a notification for op i: use it first */
			r = op_try(ops[i].chan, ops[i].send, &ops[i].item, NULL);
			if (r != AGAIN) {
				*done = i;
				return r;
			}
		}
		if (order)
			shuffle(order, n);
		r = try_pass(ops, order, n, done);
		if (r != AGAIN)
			return r;
		if (timed_out || (deadline != CONC__NO_DEADLINE && conc__now_ns() >= deadline))
			return ETIMEDOUT;
	}
}


/*
 * A single rendezvous operation: the partner search and the registration
 * happen under one hold of the channel's lock, so two single operations
 * never both register and miss each other (nor abort each other, as the
 * general path's re-check could); no spinning before registering, since a
 * partner can only find us registered.
 */
static int z_one(conc_chan *c, bool send, void **item, uint64_t timeout_ns)
{
	uint64_t deadline = conc__deadline_after(timeout_ns);
	struct waker *mine = send ? &c->sendw : &c->recvw;
	struct ctx x;
	struct entry e;
	for (;;) {
		atomic_init(&x.sel, SEL_WAITING);
		atomic_init(&x.state, 0);
		e.ctx = &x;
		e.item = send ? *item : NULL;
		e.op = 0;
		e.linked = false;
		e.completed = false;
		int r = z_try_locked(c, send, item, NULL, &e);
		if (r != AGAIN)
			return r;
		bool timed_out = ctx_sleep(&x, deadline, SLEEP_SPIN);
		uintptr_t sel;
		bool aborted = ctx_leave(&x, &sel);
		if (aborted) {
			wlock(&c->sendw);
			if (e.linked)
				list_del(mine, &e);
			wunlock(&c->sendw);
		}
		if (!aborted && e.completed) {
			if (!send)
				*item = e.item;
			return 0;
		}
		/* claimed by close (the retry sees it), or timed out */
		if (timed_out) {
			r = z_try(c, send, item, NULL);
			return r == AGAIN ? ETIMEDOUT : r;
		}
	}
}

/* A single operation: the fast try inline, the rest in wait_ops. */
static int one_op(conc_chan *c, bool send, void **item, bool try_only, uint64_t timeout_ns)
{
	int r = op_try(c, send, item, NULL);
	if (r != AGAIN)
		return r;
	if (try_only)
		return ETIMEDOUT;
	if (c->kind == K_ZERO)
		return z_one(c, send, item, timeout_ns);
	conc_select_op op = {c, send, *item};
	struct entry e;
	size_t done;
	r = wait_ops(&op, 1, false, timeout_ns, NULL, &e, &done);
	if (r == 0 && !send)
		*item = op.item;
	return r;
}

/* ---- the public calls ----------------------------------------------------- */

int conc_chan_send(conc_chan *c, void *item)
{
	if (!c)
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	return one_op(c, true, &item, false, CONC__NO_DEADLINE);
}

int conc_chan_send_timeout(conc_chan *c, void *item, uint64_t timeout_ns)
{
	if (!c)
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	return one_op(c, true, &item, timeout_ns == 0, timeout_ns);
}

int conc_chan_recv(conc_chan *c, void **item)
{
	if (!c || !item)
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	void *v = NULL;
	int r = one_op(c, false, &v, false, UINT64_MAX);
	if (r == 0)
		*item = v;
	return r;
}

int conc_chan_recv_timeout(conc_chan *c, void **item, uint64_t timeout_ns)
{
	if (!c || !item)
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	void *v = NULL;
	int r = one_op(c, false, &v, timeout_ns == 0, timeout_ns);
	if (r == 0)
		*item = v;
	return r;
}

int conc_chan_send_many(conc_chan *c, void *const *items, size_t n, uint64_t timeout_ns,
			size_t *sent)
{
	if (sent)
		*sent = 0;
	if (!c || !sent || (!items && n > 0))
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	if (n == 0)
		return 0;
	if (c->kind == K_UNBOUNDED && n > 1) {
		int r = u_send_many(c, items, n);
		if (r == 0)
			*sent = n;
		return r;
	}
	/* one deadline for the whole call */
	uint64_t deadline = conc__deadline_after(timeout_ns);
	for (size_t i = 0; i < n; i++) {
		void *it = items[i];
		int r = op_try(c, true, &it, NULL);
		if (r == AGAIN) {
			uint64_t now = timeout_ns == 0 ? deadline : conc__now_ns();
			if (timeout_ns == 0 || now >= deadline)
				return ETIMEDOUT;
			r = one_op(c, true, &it, false,
				   deadline == CONC__NO_DEADLINE ? UINT64_MAX : deadline - now);
		}
		if (r)
			return r;
		*sent = i + 1;
	}
	return 0;
}

int conc_chan_recv_many(conc_chan *c, void **items, size_t max, uint64_t timeout_ns,
			size_t *got)
{
	if (got)
		*got = 0;
	if (!c || !got || (!items && max > 0))
		return EINVAL;
	CONC__LIFE_RETURN(c, CONC__LIFE_CHAN);
	if (max == 0)
		return 0;
	void *v = NULL;
	int r = one_op(c, false, &v, timeout_ns == 0, timeout_ns);
	if (r)
		return r;
	items[0] = v;
	size_t k = 1;
	/* the rest: what is there now (unbounded: conc_queue_try_pop_n would
	 * take them in one call) */
	while (k < max && op_try(c, false, &v, NULL) == 0)
		items[k++] = v;
	*got = k;
	return 0;
}

void conc_chan_close(conc_chan *c)
{
	if (!c)
		return;
	CONC__LIFE_ABORT(c, CONC__LIFE_CHAN, "conc_chan_close");
	if (c->kind == K_ZERO) {
		wlock(&c->sendw);
		atomic_store_explicit(&c->closed, true, memory_order_seq_cst);
		struct entry *chain = list_take_all(&c->sendw, NULL);
		chain = list_take_all(&c->recvw, chain);
		wunlock(&c->sendw);
		wake_chain(chain);
		return;
	}
	if (c->kind == K_BOUNDED) {
		/* LP: MARK in tail; sends that claimed a position before it
		 * complete, later ones fail */
		atomic_fetch_or_explicit(&c->tail, c->mark, memory_order_seq_cst);
	} else {
		conc_queue_close(c->q);
	}
	/* seq_cst: the publisher's store for waiters that check closed */
	atomic_store_explicit(&c->closed, true, memory_order_seq_cst);
#if CONC__MUTANT(14) /* mutant 14: close wakes the waiting receivers only */
#else
	waker_notify_all(&c->sendw);
#endif
	waker_notify_all(&c->recvw);
}

int conc_select(conc_select_op *ops, size_t n, uint64_t timeout_ns, unsigned flags, size_t *done)
{
	if (!ops || !done || n == 0 || (flags & ~CONC_SELECT_BIASED))
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!ops[i].chan)
			return EINVAL;
		CONC__LIFE_RETURN(ops[i].chan, CONC__LIFE_CHAN);
	}
	bool biased = (flags & CONC_SELECT_BIASED) != 0;
	size_t order_st[SELECT_STACK];
	struct entry ents_st[SELECT_STACK];
	size_t *order = order_st;
	struct entry *ents = ents_st;
	void *mem = NULL;
	if (n > SELECT_STACK) {
		if (n > SIZE_MAX / (sizeof *order + sizeof *ents))
			return ENOMEM;
		mem = conc__malloc("chan.select", n * (sizeof *ents + sizeof *order));
		if (!mem)
			return ENOMEM;
		ents = mem;
		order = (size_t *)(ents + n);
	}
	int r = wait_ops(ops, n, timeout_ns == 0, timeout_ns, biased ? NULL : order, ents, done);
	free(mem);
	return r;
}

size_t conc__chan_waiters(conc_chan *c, bool send)
{
	struct waker *lockw = c->kind == K_ZERO ? &c->sendw : (send ? &c->sendw : &c->recvw);
	struct waker *w = send ? &c->sendw : &c->recvw;
	size_t k = 0;
	wlock(lockw);
	for (struct entry *e = w->head; e; e = e->next)
		k++;
	wunlock(lockw);
	return k;
}
