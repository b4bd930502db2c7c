/*
 * test_queue.c - conc/queue.h: the shared container contract
 * (container_tests.h) with FIFO expectations, plus what is the queue's own.
 */
#include "conc/queue.h"
#include "queue/queue_internal.h"

#define CT_PRIM "test_queue"
#include "container_tests.h"

static const ct_ops CT = {
	.ops = &tl_queue,
	.spec = LC_FIFO,
	.force_alloc = NULL,
	.alloc_every = 4096, /* > one segment: the first segment's pushes do not allocate */
	.steady_max_allocs = 32,
};

/* A segment's slots are claimed by index: a queue that is pushed and popped
 * across many segment boundaries keeps its order and recycles segments. */
static void test_queue_segment_boundaries(void **state)
{
	(void)state;
	unsigned slots = conc__queue_segment_slots();
	assert_true(slots >= 2);
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	uintptr_t next_push = 0, next_pop = 0;
	for (unsigned round = 0; round < 20; round++) {
		unsigned n = slots - 1 + round * 97 % slots;
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(conc_queue_push(q, (void *)next_push++), 0);
		for (unsigned i = 0; i < n - round; i++) {
			void *it;
			assert_true(conc_queue_try_pop(q, &it));
			assert_ptr_equal(it, (void *)next_pop++);
		}
	}
	void *it;
	while (conc_queue_try_pop(q, &it))
		assert_ptr_equal(it, (void *)next_pop++);
	assert_int_equal(next_pop, next_push);
	conc_queue_destroy(q, NULL);
}

/* is_empty looks at the slots of the indexes not yet popped, wherever an
 * index's slot lies in its segment: with one item left at any index of the
 * first two segments, it still sees that item, NULL included. */
static void test_queue_is_empty_each_index(void **state)
{
	(void)state;
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	unsigned n = conc__queue_segment_slots() + 40;
	for (uintptr_t i = 0; i < n; i++)
		assert_int_equal(conc_queue_push(q, i % 5 ? (void *)i : NULL), 0);
	for (uintptr_t i = 0; i < n; i++) {
		assert_false(conc_queue_is_empty(q));
		void *it;
		assert_true(conc_queue_try_pop(q, &it));
		assert_ptr_equal(it, i % 5 ? (void *)i : NULL);
	}
	assert_true(conc_queue_is_empty(q));
	conc_queue_destroy(q, NULL);
}

/* Issue 22, fault 10: every void * is an item.  The words the queue keeps
 * for itself (the burned-slot mark and whatever stands in for an item that
 * cannot be stored as is) are read through the internal hook, and every
 * value in a window around each, plus 0..1000 and the last 1001 values of
 * uintptr_t, goes through the queue and comes back equal, in order; a queue
 * holding any one of them alone is not empty, and destroy drops each. */
#define ANYW_WINDOW 256
static uintptr_t anyw_dropped[4 * ANYW_WINDOW + 2100];
static size_t anyw_ndropped;

static void anyw_drop(void *item)
{
	if (anyw_ndropped < sizeof anyw_dropped / sizeof anyw_dropped[0])
		anyw_dropped[anyw_ndropped] = (uintptr_t)item;
	anyw_ndropped++;
}

static size_t anyw_values(uintptr_t *v)
{
	uintptr_t w[2];
	conc__queue_reserved_words(w);
	size_t n = 0;
	for (int k = 0; k < 2; k++)
		for (uintptr_t d = 0; d < 2 * ANYW_WINDOW; d++)
			v[n++] = w[k] - ANYW_WINDOW + d;
	for (uintptr_t i = 0; i <= 1000; i++)
		v[n++] = i;
	for (uintptr_t i = 0; i <= 1000; i++)
		v[n++] = UINTPTR_MAX - 1000 + i;
	return n;
}

static void test_queue_any_word_is_an_item(void **state)
{
	(void)state;
	static uintptr_t v[4 * ANYW_WINDOW + 2100];
	size_t n = anyw_values(v);
	uintptr_t w[2];
	conc__queue_reserved_words(w);
	print_message("reserved words: %#lx %#lx\n", (unsigned long)w[0], (unsigned long)w[1]);
	conc_queue *q;
	/* FIFO, each value back equal; the queue drains to empty */
	assert_int_equal(conc_queue_create(&q), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(conc_queue_push(q, (void *)v[i]), 0);
	size_t bad = 0, got = 0;
	void *it;
	while (conc_queue_try_pop(q, &it)) {
		if (got >= n || (uintptr_t)it != v[got])
			bad++;
		got++;
	}
	print_message("any word: %zu values pushed, %zu popped, %zu wrong\n", n, got, bad);
	assert_int_equal(bad, 0);
	assert_int_equal(got, n);
	assert_true(conc_queue_is_empty(q));
	conc_queue_destroy(q, NULL);
	/* each value alone: not empty, and dropped at destroy */
	size_t missed = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(conc_queue_create(&q), 0);
		assert_int_equal(conc_queue_push(q, (void *)v[i]), 0);
		bool empty = conc_queue_is_empty(q);
		anyw_ndropped = 0;
		conc_queue_destroy(q, anyw_drop);
		if (empty || anyw_ndropped != 1 || anyw_dropped[0] != v[i])
			missed++;
	}
	/* all of them at once: dropped in FIFO order */
	assert_int_equal(conc_queue_create(&q), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(conc_queue_push(q, (void *)v[i]), 0);
	anyw_ndropped = 0;
	conc_queue_destroy(q, anyw_drop);
	size_t wrong_drop = 0;
	for (size_t i = 0; i < n && i < anyw_ndropped; i++)
		wrong_drop += anyw_dropped[i] != v[i];
	print_message("any word: %zu alone reported empty or not dropped; destroy dropped %zu of %zu, "
		      "%zu wrong\n", missed, anyw_ndropped, n, wrong_drop);
	assert_int_equal(missed, 0);
	assert_int_equal(anyw_ndropped, n);
	assert_int_equal(wrong_drop, 0);
}

/*
 * The Ordering contract with data behind the item: a thread writes a cell,
 * then pushes its address; whoever pops it reads the cell.  Two threads:
 * the producer pushes cell k and at once tries a pop itself, the other
 * only pops.  So a pop sometimes claims an index beyond the enq it read (the
 * producer's own pop took the index it saw), waits in the slot for the
 * producer's next push, and gets it through the slot exchange alone: the
 * enq fetch-and-add that orders most pops happened before that cell was
 * written.  A push or pop that does not publish the cell shows as a wrong
 * value on a weak machine and as a data race under TSan (mutant 1 weakens
 * the push's exchange to relaxed).  Each thread's pops come in index order
 * (one producer: FIFO), and every index is popped once.
 */
typedef struct pub_cell {
	uint64_t a, b;
} pub_cell;

typedef struct pub_ctx {
	conc_queue *q;
	pub_cell *cells;
	atomic_uchar *taken; /* per index: times popped */
	unsigned long n;
	atomic_ulong popped; /* relaxed: a stop condition, orders nothing */
	atomic_bool failed;  /* a push failed: stop */
	atomic_bool started; /* the popping thread runs (a head start only) */
} pub_ctx;

typedef struct pub_thread {
	pub_ctx *x;
	bool producer;
	int push_err;
	unsigned long got, bad_value, bad_order, last;
} pub_thread;

static uint64_t pub_value(unsigned long k)
{
	return (uint64_t)k * 0x9E3779B97F4A7C15ULL + 1;
}

/* One pop attempt; records what it found. */
static void pub_pop(pub_thread *t)
{
	pub_ctx *x = t->x;
	void *it;
	if (!conc_queue_try_pop(x->q, &it))
		return;
	atomic_fetch_add_explicit(&x->popped, 1, memory_order_relaxed);
	pub_cell *cell = it;
	if (cell < x->cells || cell >= x->cells + x->n) {
		t->bad_value++;
		return;
	}
	unsigned long k = (unsigned long)(cell - x->cells);
	if (cell->a != pub_value(k) || cell->b != ~pub_value(k))
		t->bad_value++;
	if (t->got && k <= t->last)
		t->bad_order++;
	t->last = k;
	atomic_fetch_add_explicit(&x->taken[k], 1, memory_order_relaxed);
	t->got++;
}

static void *pub_run(void *arg)
{
	pub_thread *t = arg;
	pub_ctx *x = t->x;
	uint64_t seed = 0x2545F4914F6CDD1DULL;
	if (!t->producer)
		atomic_store_explicit(&x->started, true, memory_order_relaxed);
	while (t->producer && !atomic_load_explicit(&x->started, memory_order_relaxed))
		sched_yield();
	for (unsigned long k = 0; t->producer && k < x->n && !t->push_err; k++) {
		x->cells[k].a = pub_value(k);
		x->cells[k].b = ~pub_value(k);
		t->push_err = conc_queue_push(x->q, &x->cells[k]);
		if (t->push_err)
			atomic_store_explicit(&x->failed, true, memory_order_relaxed);
		/* a random pause: sometimes the other thread claims the index
		 * first, sometimes it claims the next one */
		for (volatile unsigned j = conc_test_rand(&seed) % 64; j; j--)
			;
		pub_pop(t);
	}
	while (!atomic_load_explicit(&x->failed, memory_order_relaxed) &&
	       atomic_load_explicit(&x->popped, memory_order_relaxed) < x->n)
		pub_pop(t);
	return NULL;
}

static void test_queue_publishes_item_data(void **state)
{
	(void)state;
	conc_test_watchdog("queue publishes item data", 120);
	pub_ctx x = {.n = conc_test_iters(100000, 2)};
	assert_int_equal(conc_queue_create(&x.q), 0);
	x.cells = calloc(x.n, sizeof *x.cells);
	x.taken = calloc(x.n, sizeof *x.taken);
	assert_non_null(x.cells);
	assert_non_null(x.taken);
	atomic_init(&x.popped, 0);
	atomic_init(&x.failed, false);
	atomic_init(&x.started, false);
	pub_thread t[2] = {{.x = &x, .producer = true}, {.x = &x}};
	assert_int_equal(conc_test_run_threads(2, pub_run, t, sizeof t[0]), 0);
	assert_int_equal(t[0].push_err, 0);
	assert_int_equal(t[0].bad_value + t[1].bad_value, 0);
	assert_int_equal(t[0].bad_order + t[1].bad_order, 0);
	assert_int_equal(t[0].got + t[1].got, x.n);
	for (unsigned long k = 0; k < x.n; k++)
		assert_int_equal(atomic_load_explicit(&x.taken[k], memory_order_relaxed), 1);
	assert_true(conc_queue_is_empty(x.q));
	print_message("publishes item data: %lu items, %lu popped by the other thread\n",
		      x.n, t[1].got);
	conc_queue_destroy(x.q, NULL);
	free(x.cells);
	free(x.taken);
	conc_test_watchdog_off();
}

/* try_pop_n: the items in FIFO order, across segment boundaries; the
 * argument rules; a closed queue still drains through it. */
static void test_queue_try_pop_n_order(void **state)
{
	(void)state;
	unsigned slots = conc__queue_segment_slots();
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	void *buf[4096];
	assert_int_equal(conc_queue_try_pop_n(q, buf, 8), 0); /* empty */
	uintptr_t next_push = 1, next_pop = 1;
	/* runs that start and end at every offset around a boundary */
	for (unsigned round = 0; round < 40; round++) {
		unsigned n = slots / 3 + round * 89 % slots;
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(conc_queue_push(q, (void *)next_push++), 0);
		size_t want = round % 7 + 1 + (round % 3) * (slots / 2);
		if (want > sizeof buf / sizeof buf[0])
			want = sizeof buf / sizeof buf[0];
		size_t got = conc_queue_try_pop_n(q, buf, want);
		size_t there = (size_t)(next_push - next_pop);
		assert_int_equal(got, want < there ? want : there);
		for (size_t k = 0; k < got; k++)
			assert_ptr_equal(buf[k], (void *)next_pop++);
	}
	assert_int_equal(conc_queue_try_pop_n(NULL, buf, 8), 0);
	assert_int_equal(conc_queue_try_pop_n(q, NULL, 8), 0);
	assert_int_equal(conc_queue_try_pop_n(q, buf, 0), 0);
	conc_queue_close(q);
	for (;;) {
		size_t got = conc_queue_try_pop_n(q, buf, 1000);
		for (size_t k = 0; k < got; k++)
			assert_ptr_equal(buf[k], (void *)next_pop++);
		if (got == 0)
			break;
	}
	assert_int_equal(next_pop, next_push);
	assert_true(conc_queue_is_empty(q));
	conc_queue_destroy(q, NULL);
}

/* try_pop_n racing pushes and single pops: every item taken exactly once,
 * and each consumer sees each producer's items in the order pushed
 * (per-producer FIFO, kept by a batch as by single pops). */
#define PN_PRODUCERS 2
#define PN_CONSUMERS 2
typedef struct pn_ctx {
	conc_queue *q;
	unsigned long per;
	atomic_uint producers_left;
	atomic_uchar *taken; /* [PN_PRODUCERS * per] */
	atomic_ulong progress;
} pn_ctx;

typedef struct pn_thread {
	pn_ctx *x;
	unsigned id;
	unsigned long got, dup, bad_order, push_err;
} pn_thread;

static void *pn_run(void *arg)
{
	pn_thread *t = arg;
	pn_ctx *x = t->x;
	if (t->id < PN_PRODUCERS) {
		for (unsigned long i = 0; i < x->per; i++)
			if (conc_queue_push(x->q, U((uintptr_t)t->id << 32 | (i + 1))))
				t->push_err++;
		atomic_fetch_sub(&x->producers_left, 1);
		return NULL;
	}
	uint64_t last[PN_PRODUCERS] = {0};
	void *buf[37];
	for (unsigned round = 0;; round++) {
		size_t max = 1 + round % 37, got;
		bool done = atomic_load(&x->producers_left) == 0;
		if (round % 5 == 0)
			got = conc_queue_try_pop(x->q, &buf[0]) ? 1 : 0;
		else
			got = conc_queue_try_pop_n(x->q, buf, max);
		for (size_t k = 0; k < got; k++) {
			uintptr_t v = (uintptr_t)buf[k];
			unsigned p = (unsigned)(v >> 32);
			uint64_t i = v & 0xffffffffu;
			if (p >= PN_PRODUCERS || i == 0 || i > x->per) {
				t->bad_order++;
				continue;
			}
			if (i <= last[p])
				t->bad_order++;
			last[p] = i;
			if (atomic_fetch_add(&x->taken[p * x->per + i - 1], 1) != 0)
				t->dup++;
			t->got++;
		}
		atomic_fetch_add_explicit(&x->progress, got, memory_order_relaxed);
		if (got == 0 && done)
			break;
		if (got == 0)
			sched_yield();
	}
	return NULL;
}

static void test_queue_try_pop_n_concurrent(void **state)
{
	(void)state;
	pn_ctx x = {.per = conc_test_iters(200000, 4)};
	assert_int_equal(conc_queue_create(&x.q), 0);
	x.taken = calloc(PN_PRODUCERS * x.per, sizeof *x.taken);
	assert_non_null(x.taken);
	atomic_init(&x.producers_left, PN_PRODUCERS);
	atomic_init(&x.progress, 0);
	conc_test_progress *w = conc_test_progress_watchdog_start("queue try_pop_n", &x.progress, 5);
	assert_non_null(w);
	pn_thread t[PN_PRODUCERS + PN_CONSUMERS];
	for (unsigned i = 0; i < PN_PRODUCERS + PN_CONSUMERS; i++)
		t[i] = (pn_thread){.x = &x, .id = i};
	assert_int_equal(conc_test_run_threads(PN_PRODUCERS + PN_CONSUMERS, pn_run, t, sizeof t[0]), 0);
	conc_test_progress_watchdog_stop(w);
	unsigned long got = 0;
	for (unsigned i = 0; i < PN_PRODUCERS + PN_CONSUMERS; i++) {
		assert_int_equal(t[i].push_err, 0);
		assert_int_equal(t[i].dup, 0);
		assert_int_equal(t[i].bad_order, 0);
		got += t[i].got;
	}
	assert_int_equal(got, PN_PRODUCERS * x.per);
	for (unsigned long k = 0; k < PN_PRODUCERS * x.per; k++)
		assert_int_equal(atomic_load(&x.taken[k]), 1);
	assert_true(conc_queue_is_empty(x.q));
	conc_queue_destroy(x.q, NULL);
	free(x.taken);
}

/* push_n: the argument rules, n 0 (at once, closed or not), batches of
 * every size around the segment sizes (chains of segments included),
 * items 0..2 (escaped), alternating with single pushes; everything comes
 * back in FIFO order through try_pop and try_pop_n, and destroy drops what
 * is left in FIFO order. */
static uintptr_t pn_dropped[8192];
static size_t pn_ndropped;

static void pn_drop(void *item)
{
	if (pn_ndropped < sizeof pn_dropped / sizeof pn_dropped[0])
		pn_dropped[pn_ndropped] = (uintptr_t)item;
	pn_ndropped++;
}

static void test_queue_push_n_order(void **state)
{
	(void)state;
	static void *in[2200], *out[2200];
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	assert_int_equal(conc_queue_push_n(NULL, in, 3), EINVAL);
	assert_int_equal(conc_queue_push_n(q, NULL, 3), EINVAL);
	assert_int_equal(conc_queue_push_n(q, NULL, 0), 0);
	assert_int_equal(conc_queue_push_n(q, in, 0), 0);
	assert_true(conc_queue_is_empty(q));
	uintptr_t next_push = 0, next_pop = 0;
	static const size_t sizes[] = {1, 2, 3, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 2049, 7};
	for (unsigned round = 0; round < 3; round++) {
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			size_t n = sizes[k];
			for (size_t j = 0; j < n; j++)
				in[j] = (void *)next_push++;
			assert_int_equal(conc_queue_push_n(q, in, n), 0);
			assert_false(conc_queue_is_empty(q));
			/* singles between batches: they fill a batch segment's
			 * room, and the next batch seals what they leave */
			for (size_t j = 0; j < (k + round) % 4; j++)
				assert_int_equal(conc_queue_push(q, (void *)next_push++), 0);
			/* pop some of it, the rest in later rounds */
			size_t want = n / 2 + 1, got;
			if (k % 2)
				got = conc_queue_try_pop_n(q, out, want);
			else
				for (got = 0; got < want && conc_queue_try_pop(q, &out[got]); got++)
					;
			assert_int_equal(got, want);
			for (size_t j = 0; j < got; j++)
				assert_ptr_equal(out[j], (void *)next_pop++);
		}
	}
	size_t got;
	while ((got = conc_queue_try_pop_n(q, out, 100)) > 0)
		for (size_t j = 0; j < got; j++)
			assert_ptr_equal(out[j], (void *)next_pop++);
	assert_int_equal(next_pop, next_push);
	assert_true(conc_queue_is_empty(q));
	/* what is left at destroy is dropped in FIFO order */
	for (size_t j = 0; j < 3000; j++)
		in[j % 1500] = (void *)(uintptr_t)j, (void)0;
	for (size_t j = 0; j < 1500; j++)
		in[j] = (void *)(uintptr_t)j;
	assert_int_equal(conc_queue_push_n(q, in, 1500), 0);
	assert_int_equal(conc_queue_push(q, (void *)(uintptr_t)1500), 0);
	for (size_t j = 0; j < 100; j++)
		in[j] = (void *)(uintptr_t)(1501 + j);
	assert_int_equal(conc_queue_push_n(q, in, 100), 0);
	/* closed: EPIPE and nothing pushed; n 0 still 0 */
	conc_queue_close(q);
	assert_int_equal(conc_queue_push_n(q, in, 5), EPIPE);
	assert_int_equal(conc_queue_push_n(q, in, 0), 0);
	pn_ndropped = 0;
	conc_queue_destroy(q, pn_drop);
	assert_int_equal(pn_ndropped, 1601);
	for (size_t j = 0; j < 1601; j++)
		assert_int_equal(pn_dropped[j], j);
}

/*
 * push_n under contention: producers push tagged items in batches (random
 * sizes, some past a segment) and singles, consumers take them with
 * try_pop and try_pop_n.  Checked over the whole run: every item taken
 * exactly once; each consumer sees each producer's items in order; and a
 * batch is consecutive in the queue, so in each consumer's sequence the
 * items it got from one batch are adjacent (a consumer that took an item
 * of batch b, then another item, then one of b again, saw two of its own
 * pops out of the queue's order).
 */
#define PB_PRODUCERS 3
#define PB_CONSUMERS 2
typedef struct pb_ctx {
	conc_queue *q;
	unsigned long per;
	uint32_t *batch_of[PB_PRODUCERS]; /* per item: 1 + its batch's number, 0: single */
	unsigned long batches[PB_PRODUCERS];
	atomic_uint producers_left;
	atomic_uchar *taken;
	atomic_ulong progress;
} pb_ctx;

typedef struct pb_thread {
	pb_ctx *x;
	unsigned id;
	unsigned long got, dup, bad_order, bad_batch, push_err;
} pb_thread;

#define PB_ITEM(p, i) ((void *)((uintptr_t)(p) << 32 | (uintptr_t)(i)))

static void *pb_run(void *arg)
{
	pb_thread *t = arg;
	pb_ctx *x = t->x;
	uint64_t seed = 0x9E3779B97F4A7C15ULL * (t->id + 1);
	if (t->id < PB_PRODUCERS) {
		static _Thread_local void *buf[1100];
		unsigned p = t->id;
		unsigned long i = 1, nb = 0;
		while (i <= x->per) {
			unsigned r = (unsigned)(conc_test_rand(&seed) % 64);
			unsigned long n = r < 20 ? 1 : r < 62 ? 2 + r : 1000 + r;
			if (n > x->per - i + 1)
				n = x->per - i + 1;
			if (n == 1) {
				x->batch_of[p][i] = 0;
				if (conc_queue_push(x->q, PB_ITEM(p, i)))
					t->push_err++;
			} else {
				nb++;
				for (unsigned long k = 0; k < n; k++) {
					x->batch_of[p][i + k] = (uint32_t)nb;
					buf[k] = PB_ITEM(p, i + k);
				}
				if (conc_queue_push_n(x->q, buf, n))
					t->push_err++;
			}
			i += n;
		}
		x->batches[p] = nb;
		atomic_fetch_sub(&x->producers_left, 1);
		return NULL;
	}
	uint64_t last[PB_PRODUCERS] = {0};
	/* the batches this consumer saw and left (per producer, a byte per
	 * batch number), and the batch of its previous item */
	unsigned char *left[PB_PRODUCERS];
	for (unsigned p = 0; p < PB_PRODUCERS; p++)
		left[p] = calloc(x->per + 2, 1);
	unsigned prev_p = 0;
	uint32_t prev_b = 0;
	void *buf[80];
	for (unsigned round = 0;; round++) {
		bool done = atomic_load(&x->producers_left) == 0;
		size_t got;
		if (round % 3 == 0)
			got = conc_queue_try_pop(x->q, &buf[0]) ? 1 : 0;
		else
			got = conc_queue_try_pop_n(x->q, buf, 1 + (size_t)(conc_test_rand(&seed) % 80));
		for (size_t k = 0; k < got; k++) {
			uintptr_t v = (uintptr_t)buf[k];
			unsigned p = (unsigned)(v >> 32);
			uint64_t i = v & 0xffffffffu;
			if (p >= PB_PRODUCERS || i == 0 || i > x->per) {
				t->bad_order++;
				continue;
			}
			if (i <= last[p])
				t->bad_order++;
			last[p] = i;
			if (atomic_fetch_add(&x->taken[p * x->per + i - 1], 1) != 0)
				t->dup++;
			/* acquire: the producer wrote batch_of before the push
			 * that published this item */
			uint32_t b = x->batch_of[p][i];
			if (prev_b && (prev_p != p || prev_b != b))
				left[prev_p][prev_b] = 1; /* left that batch */
			if (b && left[p][b])
				t->bad_batch++; /* came back to a batch it had left */
			prev_p = p;
			prev_b = b;
			t->got++;
		}
		atomic_fetch_add_explicit(&x->progress, got, memory_order_relaxed);
		if (got == 0 && done)
			break;
		if (got == 0)
			sched_yield();
	}
	for (unsigned p = 0; p < PB_PRODUCERS; p++)
		free(left[p]);
	return NULL;
}

static void test_queue_push_n_concurrent(void **state)
{
	(void)state;
	pb_ctx x = {.per = conc_test_iters(150000, 4)};
	assert_int_equal(conc_queue_create(&x.q), 0);
	x.taken = calloc(PB_PRODUCERS * x.per, sizeof *x.taken);
	assert_non_null(x.taken);
	for (unsigned p = 0; p < PB_PRODUCERS; p++) {
		x.batch_of[p] = calloc(x.per + 2, sizeof *x.batch_of[p]);
		assert_non_null(x.batch_of[p]);
	}
	atomic_init(&x.producers_left, PB_PRODUCERS);
	atomic_init(&x.progress, 0);
	conc_test_progress *w = conc_test_progress_watchdog_start("queue push_n", &x.progress, 5);
	assert_non_null(w);
	pb_thread t[PB_PRODUCERS + PB_CONSUMERS];
	for (unsigned i = 0; i < PB_PRODUCERS + PB_CONSUMERS; i++)
		t[i] = (pb_thread){.x = &x, .id = i};
	assert_int_equal(conc_test_run_threads(PB_PRODUCERS + PB_CONSUMERS, pb_run, t, sizeof t[0]), 0);
	conc_test_progress_watchdog_stop(w);
	unsigned long got = 0, batches = 0;
	for (unsigned i = 0; i < PB_PRODUCERS + PB_CONSUMERS; i++) {
		assert_int_equal(t[i].push_err, 0);
		assert_int_equal(t[i].dup, 0);
		assert_int_equal(t[i].bad_order, 0);
		assert_int_equal(t[i].bad_batch, 0);
		got += t[i].got;
	}
	for (unsigned p = 0; p < PB_PRODUCERS; p++)
		batches += x.batches[p];
	print_message("push_n concurrent: %lu items, %lu batches\n", got, batches);
	assert_int_equal(got, PB_PRODUCERS * x.per);
	for (unsigned long k = 0; k < PB_PRODUCERS * x.per; k++)
		assert_int_equal(atomic_load(&x.taken[k]), 1);
	assert_true(conc_queue_is_empty(x.q));
	conc_queue_destroy(x.q, NULL);
	free(x.taken);
	for (unsigned p = 0; p < PB_PRODUCERS; p++)
		free(x.batch_of[p]);
}

/*
 * close racing push_n: producers push batches (and singles) until one
 * fails with EPIPE, a third thread closes meanwhile; then the main thread
 * drains.  Each batch is all or nothing: every item of a batch whose push_n
 * returned 0 comes out once, none of a batch that got EPIPE, and nothing
 * is pushed after a producer's first EPIPE.
 */
#define PC_PRODUCERS 2
#define PC_BATCH 40
typedef struct pc_ctx {
	conc_queue *q;
	unsigned long max;      /* items per producer at most */
	unsigned char *ok;      /* per item: 1 when its push (batch) returned 0 */
	atomic_ulong pushed;    /* relaxed: when to close */
	unsigned long close_at;
} pc_ctx;

typedef struct pc_thread {
	pc_ctx *x;
	unsigned id;
	unsigned long bad_err, after_epipe;
} pc_thread;

static void *pc_run(void *arg)
{
	pc_thread *t = arg;
	pc_ctx *x = t->x;
	if (t->id == PC_PRODUCERS) {
		while (atomic_load_explicit(&x->pushed, memory_order_relaxed) < x->close_at)
			sched_yield();
		conc_queue_close(x->q);
		return NULL;
	}
	void *buf[PC_BATCH + 1];
	bool closed = false;
	uint64_t seed = 77 + t->id;
	for (unsigned long i = 0; i + PC_BATCH <= x->max;) {
		unsigned long n = 1 + conc_test_rand(&seed) % PC_BATCH;
		for (unsigned long k = 0; k < n; k++)
			buf[k] = PB_ITEM(t->id + 1, i + k);
		int r = n == 1 ? conc_queue_push(x->q, buf[0]) : conc_queue_push_n(x->q, buf, n);
		if (r == 0) {
			if (closed)
				t->after_epipe++;
			for (unsigned long k = 0; k < n; k++)
				x->ok[t->id * x->max + i + k] = 1;
			atomic_fetch_add_explicit(&x->pushed, n, memory_order_relaxed);
		} else if (r == EPIPE) {
			closed = true;
		} else {
			t->bad_err++;
		}
		i += n;
		if (closed && i > x->max / 2)
			break;
	}
	return NULL;
}

static void test_queue_push_n_close_race(void **state)
{
	(void)state;
	conc_test_watchdog("queue push_n close race", 120);
	unsigned long rounds = conc_test_iters(40, 4);
	for (unsigned long round = 0; round < rounds; round++) {
		pc_ctx x = {.max = 20000};
		x.close_at = 500 + round * 997 % 15000;
		assert_int_equal(conc_queue_create(&x.q), 0);
		x.ok = calloc(PC_PRODUCERS * x.max, 1);
		assert_non_null(x.ok);
		atomic_init(&x.pushed, 0);
		pc_thread t[PC_PRODUCERS + 1];
		for (unsigned i = 0; i <= PC_PRODUCERS; i++)
			t[i] = (pc_thread){.x = &x, .id = i};
		assert_int_equal(conc_test_run_threads(PC_PRODUCERS + 1, pc_run, t, sizeof t[0]), 0);
		unsigned long popped = 0, wrong = 0, want = 0;
		unsigned long next[PC_PRODUCERS] = {0};
		void *it;
		while (conc_queue_try_pop(x.q, &it)) {
			uintptr_t v = (uintptr_t)it;
			unsigned p = (unsigned)(v >> 32) - 1;
			unsigned long i = v & 0xffffffffu;
			if (p >= PC_PRODUCERS || i >= x.max || !x.ok[p * x.max + i] || i < next[p])
				wrong++;
			else
				next[p] = i + 1;
			popped++;
		}
		for (unsigned long k = 0; k < PC_PRODUCERS * x.max; k++)
			want += x.ok[k];
		assert_int_equal(t[0].bad_err + t[1].bad_err, 0);
		assert_int_equal(t[0].after_epipe + t[1].after_epipe, 0);
		assert_int_equal(wrong, 0);
		assert_int_equal(popped, want);
		void *v;
		assert_int_equal(conc_queue_pop(x.q, &v), EPIPE);
		conc_queue_destroy(x.q, NULL);
		free(x.ok);
	}
	conc_test_watchdog_off();
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/*
 * A batch sealed for by another batch, the segment closed, and the batch
 * linked by its helper (review of push_n, F1): test points stop each
 * thread in its window, so the interleaving happens every run.
 *   A  push_n(a1..a3) claims t's pending field, stops ("queue.batch.pending");
 *   B  push_n(b1..b3) finds A's claim, seals t for A, stops ("queue.batch.sealed");
 *   C  close marks t closed, stops ("queue.close.marked");
 *   B  goes on: links A's segment after t, then its own after A's; returns 0;
 *   A  goes on: its seal fails on a sealed and closed t.  It must see that
 *      its batch was linked (0) - not go round again, which linked A's
 *      segment after B's (a cycle: pops and close spun) or returned EPIPE
 *      for a batch that was in the queue.
 *   C  goes on and closes the rest.
 * Then: x, a1..a3, b1..b3 in that order, nothing else, and the queue
 * closed.
 */
/* Stops by role (both tests below): a thread sets its role; each role
 * stops once at its own test point, says so (rp_at) and waits there until
 * the test lets it go (rp_go). */
#define RP_ROLES 4
static const char *rp_where[RP_ROLES];
static atomic_int rp_armed[RP_ROLES], rp_at[RP_ROLES], rp_go[RP_ROLES];
static _Thread_local int rp_role;

static void rp_hook(const char *point)
{
	int r = rp_role;
	if (r < 1 || r >= RP_ROLES || !rp_where[r] || strcmp(point, rp_where[r]) != 0 ||
	    !atomic_exchange(&rp_armed[r], 0))
		return;
	atomic_store(&rp_at[r], 1);
	while (!atomic_load(&rp_go[r]))
		sched_yield();
}

/* Roles 1..n stop at where[0..n-1]; the hook installed. */
static void rp_arm(const char *const *where, int n)
{
	for (int r = 1; r < RP_ROLES; r++) {
		rp_where[r] = r <= n ? where[r - 1] : NULL;
		atomic_store(&rp_armed[r], r <= n);
		atomic_store(&rp_at[r], 0);
		atomic_store(&rp_go[r], 0);
	}
	conc__test_set_hook(rp_hook);
}

static void rp_wait_at(int r)
{
	while (!atomic_load(&rp_at[r]))
		sched_yield();
}

typedef struct qs_arg {
	conc_queue *q;
	int role, rc;
	void *items[3];
} qs_arg;

static void *qs_run(void *p)
{
	qs_arg *a = p;
	rp_role = a->role;
	if (a->role == 3)
		conc_queue_close(a->q);
	else
		a->rc = conc_queue_push_n(a->q, a->items, 3);
	return NULL;
}

static void test_queue_push_n_helped_then_closed(void **state)
{
	(void)state;
	conc_test_watchdog("push_n helped, then closed", 60);
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	assert_int_equal(conc_queue_push(q, (void *)(uintptr_t)100), 0); /* x: t has room */
	qs_arg a = {.q = q, .role = 1, .rc = -1, .items = {(void *)11, (void *)12, (void *)13}};
	qs_arg b = {.q = q, .role = 2, .rc = -1, .items = {(void *)21, (void *)22, (void *)23}};
	qs_arg c = {.q = q, .role = 3, .rc = 0};
	static const char *const where[] = {"queue.batch.pending", "queue.batch.sealed",
					    "queue.close.marked"};
	rp_arm(where, 3);
	pthread_t ta, tb, tc;
	assert_int_equal(pthread_create(&ta, NULL, qs_run, &a), 0);
	rp_wait_at(1);
	assert_int_equal(pthread_create(&tb, NULL, qs_run, &b), 0);
	rp_wait_at(2);
	assert_int_equal(pthread_create(&tc, NULL, qs_run, &c), 0);
	rp_wait_at(3);
	atomic_store(&rp_go[2], 1);
	pthread_join(tb, NULL);
	atomic_store(&rp_go[1], 1);
	pthread_join(ta, NULL);
	atomic_store(&rp_go[3], 1);
	pthread_join(tc, NULL);
	conc__test_set_hook(NULL);
	assert_int_equal(b.rc, 0);
	assert_int_equal(a.rc, 0); /* linked by B: pushed */
	static const uintptr_t want[] = {100, 11, 12, 13, 21, 22, 23};
	void *it;
	unsigned k = 0;
	while (k < 20 && conc_queue_try_pop(q, &it)) {
		if (k < 7)
			assert_int_equal((uintptr_t)it, want[k]);
		k++;
	}
	assert_int_equal(k, 7);
	assert_int_equal(conc_queue_push(q, (void *)1), EPIPE);
	conc_queue_destroy(q, NULL);
	conc_test_watchdog_off();
}

/*
 * A push that sees close's mark returns EPIPE only once the list's end is
 * marked (review of push_n, F4; the same on a full segment before
 * batches).  X claimed an index past a full segment t before close and
 * stops before linking its new segment ("queue.push.link"); close marks t
 * closed and stops ("queue.close.marked"); P's push sees the mark: EPIPE;
 * Q pops after that and finds the queue empty.  If X could still link
 * its segment now, its item would be received after a pop that came after
 * P's EPIPE found the queue empty: no order of the calls explains that.
 * So X's link must fail (EPIPE) and nothing may be left to pop.
 */
typedef struct ce_arg {
	conc_queue *q;
	int role, rc;
} ce_arg;

static void *ce_run(void *p)
{
	ce_arg *a = p;
	rp_role = a->role;
	if (a->role == 2)
		conc_queue_close(a->q);
	else
		a->rc = conc_queue_push(a->q, (void *)(uintptr_t)7777);
	return NULL;
}

static void test_queue_push_epipe_after_close_marks_end(void **state)
{
	(void)state;
	conc_test_watchdog("push EPIPE after close marks the end", 60);
	unsigned slots = conc__queue_segment_slots();
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	void *it;
	for (uintptr_t i = 0; i < slots; i++) /* t full, then drained */
		assert_int_equal(conc_queue_push(q, (void *)(i + 100)), 0);
	for (uintptr_t i = 0; i < slots; i++)
		assert_true(conc_queue_try_pop(q, &it));
	static const char *const where[] = {"queue.push.link", "queue.close.marked"};
	rp_arm(where, 2);
	ce_arg x = {.q = q, .role = 1, .rc = -1}, c = {.q = q, .role = 2, .rc = 0};
	pthread_t tx, tc;
	assert_int_equal(pthread_create(&tx, NULL, ce_run, &x), 0);
	rp_wait_at(1);
	assert_int_equal(pthread_create(&tc, NULL, ce_run, &c), 0);
	rp_wait_at(2);
	assert_int_equal(conc_queue_push(q, (void *)1), EPIPE); /* P */
	assert_false(conc_queue_try_pop(q, &it));		  /* Q */
	atomic_store(&rp_go[1], 1);
	pthread_join(tx, NULL);
	atomic_store(&rp_go[2], 1);
	pthread_join(tc, NULL);
	conc__test_set_hook(NULL);
	bool left = conc_queue_try_pop(q, &it);
	assert_false(left);
	assert_int_equal(x.rc, EPIPE);
	conc_queue_destroy(q, NULL);
	conc_test_watchdog_off();
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TESTS,
		CT_FAULT_TESTS,
		cmocka_unit_test(test_queue_segment_boundaries),
		cmocka_unit_test(test_queue_is_empty_each_index),
		cmocka_unit_test(test_queue_publishes_item_data),
		cmocka_unit_test(test_queue_any_word_is_an_item),
		cmocka_unit_test(test_queue_try_pop_n_order),
		cmocka_unit_test(test_queue_try_pop_n_concurrent),
		cmocka_unit_test(test_queue_push_n_order),
		cmocka_unit_test(test_queue_push_n_concurrent),
		cmocka_unit_test(test_queue_push_n_close_race),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_queue_push_n_helped_then_closed),
		cmocka_unit_test(test_queue_push_epipe_after_close_marks_end),
#endif
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
