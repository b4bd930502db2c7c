/*
 * scope.c - scoped threads over a process-wide cache of parked threads.
 *
 * Pieces.
 *   handle (conc_thread)  one per spawn, from the scope's arena: a chunk of
 *       32 embedded in the scope (on the caller's stack), then heap chunks
 *       of 64, 128, 256... linked in order, so spawning mallocs O(log n)
 *       times per scope and never in the common small case.  Handles are
 *       numbered in allocation order; all are freed when the scope ends.
 *   worker  an OS thread of the cache; its record lives on its own stack.
 *       It runs one handle's function, completes the handle, then parks
 *       on the idle list until a spawner hands it the next handle or its
 *       idle timeout passes (then it leaves the list and exits).
 *   cache   the idle list (doubly linked, LIFO so that hot threads are
 *       reused and cold ones time out) under one mutex, plus counters.
 *
 * Thread lifetime.  Workers are joinable.  One that leaves (idle timeout,
 * the idle cap, or a leaked epoch pin) becomes "the zombie" under the
 * lock and joins the previous zombie, so at most one exited worker is ever
 * unjoined; the next thread creation or the exit-time drain joins it.  At
 * exit (atexit handler) `closing` is set and parked workers are knocked
 * out of their wait; they leave and are joined before the handler returns.
 * Everything they touch on the way is static or their own stack, so a
 * worker still running at exit never touches freed memory.
 *
 * Handle state (futex word h->state):
 *   RUNNING --worker: exchange DONE--> DONE                    (LP: done)
 * Other linearization points: spawn, the exchange to JOB in hand_off or
 * the thread creation; join, the acquire load that reads DONE (the first
 * one in wait_done, or the one after a futex wait).
 *   RUNNING --waiter: CAS--> WAITED --worker: exchange--> DONE + futex wake
 *   UNUSED: the spawn failed after taking the handle and it was not the
 *       last one (a hole); nobody ever waits on it.
 * The worker's exchange is its last access to the handle; the futex wake
 * after it may name memory that is already freed or reused, which the
 * kernel tolerates (at worst a spurious wake-up, which every futex waiter
 * re-checks for).  So the scope may free its handles as soon as it has
 * seen every one DONE.
 *
 * Worker signal (futex word w->signal):
 *   WAIT --worker: CAS--> SLEEP          (about to futex-wait)
 *   WAIT or SLEEP --spawner: exchange--> JOB (+ futex wake if it was SLEEP)
 *   SLEEP --timeout setter, under the cache lock: CAS--> WAIT (+ wake), so
 *       that the worker recomputes its deadline
 *   JOB --worker, before it re-enters the list--> WAIT
 * Only the spawner that popped w from the idle list (under the lock) may
 * hand it a job, so there is exactly one JOB transition per idle period.
 * The worker cannot exit between being popped and receiving the job: on a
 * timeout it re-checks under the lock whether it is still listed, and if
 * not it waits for the job with no deadline.  The spawner's exchange is its
 * last access to w (the worker may run, go idle, time out and exit right
 * after it).
 *
 * Joining everything (conc_scope_run).  The owner waits for handles in
 * index order, re-reading the count each step, until it reaches the count.
 * Claim: then no scoped thread runs and none can start.  Every spawn is
 * made by the body (returned already) or by a scoped thread whose own
 * handle has a smaller index than every handle it allocates.  When the
 * owner reaches index i, every thread with index < i is DONE, so the spawn
 * that allocated handle i has returned, and the handle's state (RUNNING or
 * DONE, or UNUSED after a failure) is set for the owner to read; the
 * acquire load of DONE carries that spawn's writes.  When i reaches the
 * count, every thread that could still spawn is DONE.
 *
 * Ordering.  Spawner -> fn: the handle's fields are published by the
 * release exchange of w->signal (acquire load in idle_wait) or by
 * pthread_create.  fn -> joiner: the release exchange of DONE, acquired by
 * the joiner's load.
 *
 * Progress: spawn blocks only on the two short locks and in the kernel;
 * join and scope end sleep on futexes.  Nobody spins: a parked worker that
 * spun a few microseconds before sleeping (to spare the spawner its futex
 * wake) made W3 2-20x slower on a loaded 2-core machine, because spinners
 * took the CPU from the spawner and from the threads it woke.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conc/epoch.h"
#include "epoch/epoch_internal.h"
#include "conc/scope.h"
#include "base/arch.h"
#include "base/atfork.h"
#include "base/check.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/threads.h"
#include "scope/scope_internal.h"

/* Parked threads beyond this many exit instead of parking. */
#define MAX_IDLE 64u
#define FIRST_CHUNK 32u

enum { H_RUNNING = 0, H_DONE = 1, H_WAITED = 2, H_UNUSED = 3 };
enum { W_WAIT = 0, W_SLEEP = 1, W_JOB = 2 };

/* One cache line each, so that a worker completing handle i does not share
 * a line with the spawner filling in handle i + 1. */
struct conc_thread {
	_Alignas(CONC_CACHE_LINE) atomic_uint state; /* H_*: futex word */
	atomic_bool joined;
	void *(*fn)(conc_scope *s, void *arg);
	void *arg;
	conc_scope *scope;
	void *result;
};

struct chunk {
	struct chunk *next; /* written under the scope lock, before count */
	size_t cap;
	conc_thread *h;
};

struct conc_scope {
	pthread_mutex_t lock; /* guards tail, tail_used, chunk links */
	struct chunk *tail;
	size_t tail_used;
	atomic_size_t count; /* handles allocated, holes included */
	atomic_int error;    /* first spawn error, 0 while none */
	struct chunk first;
	conc_thread first_h[FIRST_CHUNK];
};

struct worker {
	atomic_uint signal; /* W_*: futex word */
	conc_thread *job;   /* written by the spawner that popped us */
	/* Under cache.lock: */
	struct worker *prev, *next;
	bool listed;
	uint64_t idle_since;
};

static struct {
	pthread_mutex_t lock;  /* guards idle, n_idle, the workers' list fields,
				  zombie, leaving */
	struct worker *idle;   /* most recently parked first */
	unsigned n_idle;
	bool has_zombie;       /* an exited worker nobody has joined yet */
	pthread_t zombie;
	unsigned leaving;      /* off the list to exit, not yet the zombie */
	atomic_uint settling;  /* done with a job, not yet idle or leaving */
	pthread_cond_t gone;   /* at exit: signalled as workers leave */
	atomic_bool closing;   /* at exit: parked workers leave, none parks */
	atomic_uint n_idle_pub; /* n_idle, readable without the lock */
	atomic_uint live;
	atomic_ulong created;
	_Atomic uint64_t timeout_ns;
	/* Workers parked at or before this time (conc__now_ns) leave at once
	 * (conc__scope_release_idle); only grows. */
	_Atomic uint64_t trim_before;
} cache = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.gone = PTHREAD_COND_INITIALIZER,
	.timeout_ns = CONC__SCOPE_IDLE_TIMEOUT_NS,
};

/* The handle whose function this thread is running (NULL outside one). */
static _Thread_local conc_thread *current;


/* ---- handles ---------------------------------------------------------- */

static int handle_alloc(conc_scope *s, conc_thread **out)
{
	pthread_mutex_lock(&s->lock);
	struct chunk *c = s->tail;
	if (s->tail_used == c->cap) {
		size_t cap = c->cap < 64 ? 64 : c->cap * 2;
		size_t head = conc__round_up(sizeof(struct chunk), sizeof(conc_thread));
		struct chunk *n = conc__aligned_alloc("scope.handles", _Alignof(conc_thread),
						      head + cap * sizeof(conc_thread));
		if (!n) {
			pthread_mutex_unlock(&s->lock);
			return ENOMEM;
		}
		n->next = NULL;
		n->cap = cap;
		n->h = (void *)((char *)n + head); /* aligned: head is a multiple of the handle size */
		c->next = n;
		s->tail = c = n;
		s->tail_used = 0;
	}
	*out = &c->h[s->tail_used++];
	/* release: publishes c->next for the owner's walk in join_all (its
	 * acquire load of count); the handle's own fields are published by
	 * the spawn's completion (see the claim at the top). */
	atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Undo handle_alloc after a failed spawn: give the slot back when it is
 * the last one, else leave a hole that join_all skips. */
static void handle_release(conc_scope *s, conc_thread *h)
{
	pthread_mutex_lock(&s->lock);
	if (s->tail_used > 0 && h == &s->tail->h[s->tail_used - 1]) {
		s->tail_used--;
		/* relaxed: only the owner reads count past here, and it gets
		 * here only after this spawn returned (claim at the top). */
		atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
	} else {
		/* relaxed: read by the owner after this spawn returned. */
		atomic_store_explicit(&h->state, H_UNUSED, memory_order_relaxed);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Sleep until h is DONE. */
static void wait_done(conc_thread *h)
{
	/* acquire: pairs with the worker's release exchange to DONE, so fn's
	 * writes (and result) are visible after. */
	unsigned st = atomic_load_explicit(&h->state, memory_order_acquire);
	while (st != H_DONE) {
		CONC__CHECK(st == H_RUNNING || st == H_WAITED,
			    "scope: a handle is RUNNING, WAITED or DONE");
		/* acquire (also on failure): may read DONE, as above. */
		if (st == H_RUNNING &&
		    !atomic_compare_exchange_strong_explicit(&h->state, &st, H_WAITED,
							     memory_order_acquire,
							     memory_order_acquire))
			continue; /* st now holds what is there */
		conc__futex_wait(&h->state, H_WAITED, CONC__NO_DEADLINE);
		st = atomic_load_explicit(&h->state, memory_order_acquire); /* LP: join */
	}
}

/* The worker side: run h's function, then complete h. */
static void run_job(conc_thread *h)
{
	current = h;
	void *r = h->fn(h->scope, h->arg);
	current = NULL;
	h->result = r;
	/* Counted before the exchange below, so that whoever sees DONE (the
	 * joiner, then maybe exit's drain in the same thread) also sees this
	 * thread as on its way to the idle list: the drain waits for it
	 * rather than leave it unjoined.  relaxed: the release exchange
	 * publishes it with the result. */
	atomic_fetch_add_explicit(&cache.settling, 1, memory_order_relaxed);
	/* release: publishes result and everything fn did; pairs with the
	 * acquire loads in wait_done.  The exchange (not a store) tells us
	 * whether anybody sleeps; after it, h is not ours to touch. */
	unsigned old = atomic_exchange_explicit(&h->state, H_DONE,
						memory_order_release); /* LP: done */
	if (old == H_WAITED)
		conc__futex_wake(&h->state, INT_MAX);
}

/* ---- the thread cache ------------------------------------------------- */

static void list_remove(struct worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		cache.idle = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->listed = false;
	cache.n_idle--;
	atomic_store_explicit(&cache.n_idle_pub, cache.n_idle, memory_order_relaxed);
}

static struct worker *idle_pop(void)
{
	/* relaxed: a hint only; the list is read under the lock. */
	if (atomic_load_explicit(&cache.n_idle_pub, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&cache.lock);
	struct worker *w = cache.idle;
	if (w)
		list_remove(w);
	pthread_mutex_unlock(&cache.lock);
	return w;
}

/* Give h to the parked worker w that we popped. */
static void hand_off(struct worker *w, conc_thread *h)
{
	w->job = h;
	/* release: publishes w->job and h's fields; pairs with the acquire
	 * load in idle_wait.  Our last access to w. */
	unsigned old = atomic_exchange_explicit(&w->signal, W_JOB,
						memory_order_release); /* LP: spawn */
	if (old == W_SLEEP)
		conc__futex_wake(&w->signal, 1);
}

static uint64_t deadline_of(const struct worker *w)
{
	/* seq_cst: see the CAS to SLEEP in idle_wait; closing (at exit) is
	 * knocked in the same way and means "past". */
	if (atomic_load_explicit(&cache.closing, memory_order_seq_cst))
		return 0;
	/* seq_cst: released as closing is (store, then knock). */
	if (w->idle_since <= atomic_load_explicit(&cache.trim_before, memory_order_seq_cst))
		return 0;
	uint64_t t = atomic_load_explicit(&cache.timeout_ns, memory_order_seq_cst);
	return t >= CONC__NO_DEADLINE - w->idle_since ? CONC__NO_DEADLINE
						      : w->idle_since + t;
}

/* Park w on the idle list until a job comes (returned) or the idle timeout
 * passes (NULL: the thread is to exit, already off the list). */
static conc_thread *idle_wait(struct worker *w)
{
	/* relaxed: the mutex release below publishes it to the spawner that
	 * will pop us. */
	atomic_store_explicit(&w->signal, W_WAIT, memory_order_relaxed);
	w->job = NULL;
	uint64_t now = conc__now_ns();
	pthread_mutex_lock(&cache.lock);
	/* relaxed: under the lock, which the drain reads it under; we move
	 * from settling to idle or leaving in one step */
	atomic_fetch_sub_explicit(&cache.settling, 1, memory_order_relaxed);
	if (cache.n_idle >= MAX_IDLE ||
	    atomic_load_explicit(&cache.closing, memory_order_relaxed)) {
		cache.leaving++;
		pthread_mutex_unlock(&cache.lock);
		return NULL;
	}
	w->idle_since = now;
	w->prev = NULL;
	w->next = cache.idle;
	if (w->next)
		w->next->prev = w;
	cache.idle = w;
	w->listed = true;
	cache.n_idle++;
	atomic_store_explicit(&cache.n_idle_pub, cache.n_idle, memory_order_relaxed);
	pthread_mutex_unlock(&cache.lock);

	bool popped = false;
	for (;;) {
		/* acquire: pairs with the release exchange in hand_off. */
		unsigned sig = atomic_load_explicit(&w->signal, memory_order_acquire);
		if (sig == W_JOB)
			return w->job;
		if (sig == W_WAIT) {
			unsigned expect = W_WAIT;
			/* seq_cst: with the seq_cst timeout load in deadline_of,
			 * our half of the store-buffering pair with
			 * conc__scope_set_idle_timeout_ns (store timeout, then
			 * CAS SLEEP->WAIT): either we read the new timeout or
			 * the setter sees SLEEP and knocks us out of the wait.
			 * On failure (JOB came) the acquire load re-reads. */
			if (!atomic_compare_exchange_strong_explicit(
				    &w->signal, &expect, W_SLEEP,
				    memory_order_seq_cst, memory_order_relaxed))
				continue;
		}
		uint64_t deadline = popped ? CONC__NO_DEADLINE : deadline_of(w);
		if (conc__futex_wait(&w->signal, W_SLEEP, deadline))
			continue;
		pthread_mutex_lock(&cache.lock);
		if (w->listed) {
			list_remove(w);
			cache.leaving++;
			pthread_mutex_unlock(&cache.lock);
			return NULL;
		}
		pthread_mutex_unlock(&cache.lock);
		/* A spawner popped us just now; its job is on the way. */
		popped = true;
	}
}

static void *worker_main(void *arg)
{
	struct worker w;
	atomic_init(&w.signal, W_WAIT);
	w.job = NULL;
	w.prev = w.next = NULL;
	w.listed = false;
	w.idle_since = 0;
	pthread_setname_np(pthread_self(), "conc-scope");

	conc_thread *h = arg;
	for (;;) {
		run_job(h);
		/* A function that left the thread pinned in any epoch domain
		 * must not pass the pin on: this thread exits instead. */
		if (conc__epoch_pinned_anywhere()) {
			pthread_mutex_lock(&cache.lock);
			/* relaxed: as in idle_wait (settling -> leaving) */
			atomic_fetch_sub_explicit(&cache.settling, 1, memory_order_relaxed);
			cache.leaving++;
			pthread_mutex_unlock(&cache.lock);
			break;
		}
		h = idle_wait(&w);
		if (!h)
			break; /* idle_wait counted us in leaving */
	}
	/* Become the zombie and join the one before us: at most one exited
	 * worker waits to be joined (by the next leaver, the next thread
	 * creation, or the exit-time drain). */
	pthread_mutex_lock(&cache.lock);
	bool had = cache.has_zombie;
	pthread_t prev = cache.zombie;
	cache.zombie = pthread_self();
	cache.has_zombie = true;
	cache.leaving--;
	pthread_cond_broadcast(&cache.gone);
	pthread_mutex_unlock(&cache.lock);
	if (had)
		pthread_join(prev, NULL);
	/* release: orders this thread's last accesses before a test that
	 * sees live at zero (and then checks /proc). */
	atomic_fetch_sub_explicit(&cache.live, 1, memory_order_release);
	return NULL;
}

/* Join the zombie, if there is one. */
static void reap_zombie(void)
{
	pthread_mutex_lock(&cache.lock);
	bool had = cache.has_zombie;
	pthread_t z = cache.zombie;
	cache.has_zombie = false;
	pthread_mutex_unlock(&cache.lock);
	if (had)
		pthread_join(z, NULL);
}

/* Knock every parked worker out of its futex wait so that it re-reads the
 * timeout and the closing flag (the caller stored them, seq_cst). */
static void knock_idle(void)
{
	pthread_mutex_lock(&cache.lock);
	for (struct worker *w = cache.idle; w; w = w->next) {
		/* Listed workers are alive and no spawner hands them a job
		 * while we hold the lock: SLEEP->WAIT makes a sleeper (or one
		 * about to sleep) come back and recompute its deadline. */
		unsigned expect = W_SLEEP;
		if (atomic_compare_exchange_strong_explicit(&w->signal, &expect, W_WAIT,
							    memory_order_seq_cst,
							    memory_order_seq_cst))
			conc__futex_wake(&w->signal, 1);
	}
	pthread_mutex_unlock(&cache.lock);
}

/*
 * Process exit: parked workers leave and are joined, so that nothing of
 * theirs is left for leak checkers (valgrind counts a live thread's TLS as
 * "possibly lost").  Workers still running a spawned function are not
 * waited for; they end with the process.  Touches only static memory.
 */
static void drain_at_exit(void)
{
	/* seq_cst: the setter's half of the pair at the CAS to SLEEP. */
	atomic_store_explicit(&cache.closing, true, memory_order_seq_cst);
	knock_idle();
	pthread_mutex_lock(&cache.lock);
	/* A settling worker (its last job done, the lock not yet taken)
	 * becomes idle or leaving under this lock, and then sees closing
	 * (or is knocked): it leaves and signals gone.  relaxed: see
	 * run_job (the joins that preceded exit ordered the increments
	 * before us; the decrements are under the lock). */
	while (cache.n_idle != 0 || cache.leaving != 0 ||
	       atomic_load_explicit(&cache.settling, memory_order_relaxed) != 0)
		pthread_cond_wait(&cache.gone, &cache.lock);
	pthread_mutex_unlock(&cache.lock);
	reap_zombie();
}

/* fork(): the child has none of the parent's threads; start it empty. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&cache.lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&cache.lock);
}

static void atfork_child(void)
{
	cache.idle = NULL;
	cache.n_idle = 0;
	cache.has_zombie = false;
	cache.leaving = 0;
	atomic_store_explicit(&cache.settling, 0, memory_order_relaxed);
	pthread_cond_init(&cache.gone, NULL);
	atomic_store_explicit(&cache.n_idle_pub, 0, memory_order_relaxed);
	atomic_store_explicit(&cache.live, current ? 1 : 0, memory_order_relaxed);
	pthread_mutex_unlock(&cache.lock);
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_register(void)
{
	conc__atfork_register(CONC__ATFORK_SCOPE, atfork_prepare, atfork_parent, atfork_child);
	conc__threads_add_releaser(conc__scope_release_idle);
	atexit(drain_at_exit); /* on failure: parked threads just vanish */
}

/* A new cache thread whose first job is h.  0 or EAGAIN. */
static int start_thread(conc_thread *h)
{
	int saved = errno;
	pthread_once(&hooks_once, hooks_register);
	reap_zombie();
	pthread_attr_t attr;
	if (pthread_attr_init(&attr) != 0) {
		errno = saved;
		return EAGAIN;
	}
	/* The new thread inherits our mask: block everything around the
	 * create, so that cached threads never take the program's signals. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* relaxed: a count for tests; the thread's exit decrements it. */
	atomic_fetch_add_explicit(&cache.live, 1, memory_order_relaxed);
	pthread_t t;
	int err = conc__thread_create("scope.thread", &t, &attr, worker_main, h); /* LP: spawn */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		atomic_fetch_sub_explicit(&cache.live, 1, memory_order_relaxed);
		errno = saved;
		return EAGAIN;
	}
	atomic_fetch_add_explicit(&cache.created, 1, memory_order_relaxed);
	errno = saved;
	return 0;
}

/* ---- the public calls ------------------------------------------------- */

static void note_error(conc_scope *s, int err)
{
	int none = 0;
	/* relaxed: read by the owner after it joined everything (ordered by
	 * the DONE acquires, or by program order for the body's spawns). */
	atomic_compare_exchange_strong_explicit(&s->error, &none, err,
						memory_order_relaxed,
						memory_order_relaxed);
}

int conc_scope_spawn(conc_scope *s, void *(*fn)(conc_scope *s, void *arg),
		     void *arg, conc_thread **handle)
{
	if (!s)
		return EINVAL;
	if (!fn) {
		note_error(s, EINVAL); /* a spawn error like any other (DESIGN.md) */
		return EINVAL;
	}
	conc_thread *h;
	int err = handle_alloc(s, &h);
	if (err) {
		note_error(s, err);
		return err;
	}
	h->fn = fn;
	h->arg = arg;
	h->scope = s;
	h->result = NULL;
	/* relaxed: published with the rest of h (hand-off or create). */
	atomic_store_explicit(&h->joined, false, memory_order_relaxed);
	atomic_store_explicit(&h->state, H_RUNNING, memory_order_relaxed);

	struct worker *w = idle_pop();
	if (w) {
		if (handle)
			*handle = h;
		hand_off(w, h);
		return 0;
	}
	conc_thread *before = handle ? *handle : NULL;
	if (handle)
		*handle = h; /* before fn starts, as documented */
	err = start_thread(h);
	if (err) {
		if (handle)
			*handle = before;
		handle_release(s, h);
		note_error(s, err);
		return err;
	}
	return 0;
}

int conc_thread_join(conc_thread *t, void **result)
{
	if (!t)
		return EINVAL;
	if (t == current)
		return EDEADLK;
	/* relaxed: decides only who joins; the data comes with DONE. */
	if (atomic_exchange_explicit(&t->joined, true, memory_order_relaxed))
		return EINVAL;
	wait_done(t);
	if (result)
		*result = t->result;
	return 0;
}

/* Wait for every handle of s, in index order (the claim at the top). */
static void join_all(conc_scope *s)
{
	struct chunk *c = &s->first;
	size_t off = 0;
	/* acquire: pairs with the release in handle_alloc (chunk links). */
	for (size_t i = 0; i < atomic_load_explicit(&s->count, memory_order_acquire);
	     i++, off++) {
		if (off == c->cap) {
			c = c->next;
			off = 0;
		}
		conc_thread *h = &c->h[off];
		/* relaxed: a hole was marked before its spawn returned, which
		 * happened-before we got here. */
		if (atomic_load_explicit(&h->state, memory_order_relaxed) != H_UNUSED)
			wait_done(h);
	}
}

int conc_scope_run(void (*body)(conc_scope *s, void *ctx), void *ctx)
{
	if (!body)
		return EINVAL;
	conc_scope s;
	pthread_mutex_init(&s.lock, NULL);
	s.first.next = NULL;
	s.first.cap = FIRST_CHUNK;
	s.first.h = s.first_h;
	s.tail = &s.first;
	s.tail_used = 0;
	atomic_init(&s.count, 0);
	atomic_init(&s.error, 0);

	body(&s, ctx);
	if (CONC__MUTANT_VALUE(7, true, atomic_load_explicit(&s.error, memory_order_relaxed) == 0))
		join_all(&s);

	for (struct chunk *c = s.first.next, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	pthread_mutex_destroy(&s.lock);
	return atomic_load_explicit(&s.error, memory_order_relaxed);
}

/* ---- hooks (scope/scope_internal.h) ----------------------------------------- */

void conc__scope_set_idle_timeout_ns(uint64_t ns)
{
	/* seq_cst: the setter's half of the pair described at the CAS to
	 * SLEEP in idle_wait. */
	atomic_store_explicit(&cache.timeout_ns, ns ? ns : CONC__SCOPE_IDLE_TIMEOUT_NS,
			      memory_order_seq_cst);
	knock_idle();
}

unsigned conc__scope_release_idle(void)
{
	uint64_t now = conc__now_ns();
	/* seq_cst: the setter's half of the pair at the CAS to SLEEP (as
	 * for the timeout); a max, so that a slower concurrent call never
	 * moves it back. */
	uint64_t old = atomic_load_explicit(&cache.trim_before, memory_order_seq_cst);
	while (old < now &&
	       !atomic_compare_exchange_weak_explicit(&cache.trim_before, &old, now,
						      memory_order_seq_cst,
						      memory_order_seq_cst))
		;
	unsigned n = atomic_load_explicit(&cache.n_idle_pub, memory_order_relaxed);
	if (n == 0)
		return 0;
	knock_idle();
	/* Until every worker parked before now has left (a spawner may take
	 * some first: they are no longer idle) and exited. */
	pthread_mutex_lock(&cache.lock);
	for (;;) {
		bool old_idle = false;
		for (struct worker *w = cache.idle; w && !old_idle; w = w->next)
			old_idle = w->idle_since <= now;
		if (!old_idle && cache.leaving == 0)
			break;
		pthread_cond_wait(&cache.gone, &cache.lock);
	}
	pthread_mutex_unlock(&cache.lock);
	reap_zombie(); /* the last to leave */
	return n;
}

unsigned conc__scope_idle_threads(void)
{
	return atomic_load_explicit(&cache.n_idle_pub, memory_order_relaxed);
}

unsigned conc__scope_live_threads(void)
{
	/* acquire: pairs with the release decrement at thread exit. */
	return atomic_load_explicit(&cache.live, memory_order_acquire);
}

unsigned long conc__scope_threads_created(void)
{
	return atomic_load_explicit(&cache.created, memory_order_relaxed);
}
