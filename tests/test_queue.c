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
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
