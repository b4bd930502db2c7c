// cpp_consumer.cc - libconc from C++17: the umbrella header, every primitive
// that has landed (CONC_HAVE_<PRIM>, set by meson for each src/<prim>.c),
// captureless lambdas as callbacks, linked against libconc.a.
//
// It checks that the headers compile as C++ (extern "C", no _Atomic, the
// inline epoch fast path with its __thread record) and that a C++ program
// links and runs against the C archive; the semantics are the unit suites'.
#include <conc/conc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

static int failures;

#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond)) {                                                  \
			std::fprintf(stderr, "cpp_consumer.cc:%d: %s\n", __LINE__, \
				     #cond);                                    \
			failures++;                                             \
		}                                                               \
	} while (0)

[[maybe_unused]] static void *as_item(std::uintptr_t v) { return reinterpret_cast<void *>(v); }
[[maybe_unused]] static std::uintptr_t from_item(void *p) { return reinterpret_cast<std::uintptr_t>(p); }

static void cpu_part()
{
	CHECK(conc_cpu_count() >= 1);
}

#ifdef CONC_HAVE_EPOCH
struct object {
	int value;
	conc_epoch_node node;
};

static std::atomic<int> epoch_ran{0};

static void epoch_part()
{
	conc_epoch *d = nullptr;
	CHECK(conc_epoch_create(&d) == 0);
	if (!d)
		return;
	object *o = new object{42, {}};
	conc_epoch_pin(d);
	conc_epoch_pin(d); // nests
	CHECK(conc_epoch_is_pinned(d));
	conc_epoch_retire(d, &o->node, [](conc_epoch_node *n) {
		object *obj = reinterpret_cast<object *>(
			reinterpret_cast<char *>(n) - offsetof(object, node));
		if (obj->value == 42)
			epoch_ran++;
		delete obj;
	});
	CHECK(conc_epoch_barrier(d) == EDEADLK);
	conc_epoch_unpin(d);
	conc_epoch_unpin(d);
	CHECK(!conc_epoch_is_pinned(d));
	CHECK(conc_epoch_defer(d, [](void *p) { static_cast<std::atomic<int> *>(p)->fetch_add(1); },
			       &epoch_ran) == 0);
	CHECK(conc_epoch_defer(d, nullptr, nullptr) == EINVAL);
	CHECK(conc_epoch_barrier(d) == 0);
	CHECK(epoch_ran == 2);
	conc_epoch_stats st{};
	conc_epoch_get_stats(d, &st);
	CHECK(st.retired == 2 && st.freed == 2 && st.pending == 0);
	CHECK(conc_epoch_destroy(d) == 0);
	CHECK(conc_epoch_destroy(conc_epoch_global()) == EINVAL);
	conc_epoch_pin(conc_epoch_global());
	conc_epoch_unpin(conc_epoch_global());
}
#endif

#ifdef CONC_HAVE_SCOPE
static void scope_part()
{
	std::vector<long> sums(4, 0);
	int rc = conc_scope_run([](conc_scope *s, void *ctx) {
		auto &v = *static_cast<std::vector<long> *>(ctx);
		conc_thread *h[4] = {};
		for (std::size_t i = 0; i < v.size(); i++) {
			int e = conc_scope_spawn(s, [](conc_scope *, void *arg) -> void * {
				long *slot = static_cast<long *>(arg);
				for (long k = 1; k <= 1000; k++)
					*slot += k;
				return arg;
			}, &v[i], &h[i]);
			CHECK(e == 0);
		}
		// Join two, leave two for the scope's end.
		for (std::size_t i = 0; i < 2; i++) {
			void *res = nullptr;
			CHECK(h[i] && conc_thread_join(h[i], &res) == 0 && res == &v[i]);
		}
		CHECK(conc_thread_join(nullptr, nullptr) == EINVAL);
	}, &sums);
	CHECK(rc == 0);
	for (long s : sums)
		CHECK(s == 500500);
	CHECK(conc_scope_run(nullptr, nullptr) == EINVAL);
}
#endif

// The queue and the stack have the same shape: one check for both.
template <class T> struct fifo_ops {
	int (*create)(T **);
	int (*create_in)(T **, conc_epoch *);
	void (*destroy)(T *, void (*)(void *));
	int (*push)(T *, void *);
	bool (*try_pop)(T *, void **);
	int (*pop)(T *, void **);
	int (*pop_timeout)(T *, void **, std::uint64_t);
	void (*close)(T *);
	bool (*is_empty)(T *);
};

template <class T> static void fifo_part(const fifo_ops<T> &op, bool lifo)
{
	T *q = nullptr;
	CHECK(op.create(&q) == 0);
	if (!q)
		return;
	CHECK(op.is_empty(q));
	void *item = as_item(7);
	CHECK(!op.try_pop(q, &item) && from_item(item) == 7);
	for (std::uintptr_t i = 0; i < 100; i++)
		CHECK(op.push(q, as_item(i)) == 0);
	CHECK(!op.is_empty(q));
	for (std::uintptr_t i = 0; i < 50; i++) {
		CHECK(op.try_pop(q, &item));
		CHECK(from_item(item) == (lifo ? 99 - i : i));
	}
	CHECK(op.pop_timeout(q, &item, 1000000) == 0);
	CHECK(from_item(item) == (lifo ? 49u : 50u));
	op.close(q);
	CHECK(op.push(q, nullptr) == EPIPE);
	CHECK(op.pop(q, &item) == 0); // closed, not yet empty: drains
	static std::atomic<int> dropped{0};
	op.destroy(q, [](void *) { dropped++; });
	CHECK(dropped == 48);

	conc_epoch *d = nullptr;
	CHECK(conc_epoch_create(&d) == 0);
	CHECK(op.create_in(&q, nullptr) == EINVAL);
	CHECK(d && op.create_in(&q, d) == 0);
	if (d && q) {
		op.close(q);
		CHECK(op.pop(q, &item) == EPIPE);
		CHECK(op.pop_timeout(q, &item, 0) == EPIPE);
		op.destroy(q, nullptr);
		CHECK(conc_epoch_barrier(d) == 0);
		CHECK(conc_epoch_destroy(d) == 0);
	}
}

#ifdef CONC_HAVE_QUEUE
static void queue_part()
{
	fifo_ops<conc_queue> op = {conc_queue_create, conc_queue_create_in,
				   conc_queue_destroy, conc_queue_push,
				   conc_queue_try_pop, conc_queue_pop,
				   conc_queue_pop_timeout, conc_queue_close,
				   conc_queue_is_empty};
	fifo_part(op, false);
}
#endif

#ifdef CONC_HAVE_STACK
static void stack_part()
{
	fifo_ops<conc_stack> op = {conc_stack_create, conc_stack_create_in,
				   conc_stack_destroy, conc_stack_push,
				   conc_stack_try_pop, conc_stack_pop,
				   conc_stack_pop_timeout, conc_stack_close,
				   conc_stack_is_empty};
	fifo_part(op, true);
}
#endif

#ifdef CONC_HAVE_POOL
static conc_pool *make_pool()
{
	conc_pool_config cfg{};
	cfg.threads = 2;
	cfg.name = "cpp";
	conc_pool *p = nullptr;
	CHECK(conc_pool_create(&p, &cfg) == 0);
	return p;
}

static void pool_part()
{
	conc_pool *p = make_pool();
	if (!p)
		return;
	CHECK(conc_pool_threads(p) == 2);
	static std::atomic<int> ran{0};
	for (int i = 0; i < 100; i++)
		CHECK(conc_pool_execute(p, [](void *) { ran++; }, nullptr) == 0);
	CHECK(conc_pool_execute(p, nullptr, nullptr) == EINVAL);
	CHECK(conc_pool_wait(p) == 0);
	CHECK(ran == 100);
	CHECK(conc_pool_queued(p) == 0);
	CHECK(conc_pool_resize(p, 1) == 0 && conc_pool_threads(p) == 1);
	CHECK(conc_pool_destroy(p) == 0);
	CHECK(conc_pool_destroy(conc_pool_global()) == EINVAL);
}
#endif

#if defined(CONC_HAVE_PARALLEL) && defined(CONC_HAVE_POOL)
static void parallel_part()
{
	conc_pool *p = make_pool();
	if (!p)
		return;
	static std::atomic<unsigned long> sum{0};
	CHECK(conc_parallel_for(p, 0, 1000, 0, [](std::size_t lo, std::size_t hi, void *) {
		for (std::size_t i = lo; i < hi; i++)
			sum += i;
		return 0;
	}, nullptr) == 0);
	CHECK(sum == 499500);
	CHECK(conc_parallel_for(p, 5, 1, 0, [](std::size_t, std::size_t, void *) { return 0; },
				nullptr) == EINVAL);

	double total = -1;
	CHECK(conc_parallel_reduce(p, 0, 1000, 16, &total, sizeof total,
		[](void *acc, void *) { *static_cast<double *>(acc) = 0; },
		[](std::size_t lo, std::size_t hi, void *acc, void *) {
			for (std::size_t i = lo; i < hi; i++)
				*static_cast<double *>(acc) += 0.5 * static_cast<double>(i);
			return 0;
		},
		[](void *acc, const void *other, void *) {
			*static_cast<double *>(acc) += *static_cast<const double *>(other);
		}, nullptr) == 0);
	CHECK(total == 249750.0);

	int a = 0, b = 0;
	CHECK(conc_join(p, [](void *x) { *static_cast<int *>(x) = 1; }, &a,
			[](void *x) { *static_cast<int *>(x) = 2; }, &b) == 0);
	CHECK(a == 1 && b == 2);
	CHECK(conc_pool_destroy(p) == 0);
}
#endif

int main()
{
	int parts = 0;
	cpu_part();
	parts++;
#ifdef CONC_HAVE_EPOCH
	epoch_part();
	parts++;
#endif
#ifdef CONC_HAVE_SCOPE
	scope_part();
	parts++;
#endif
#ifdef CONC_HAVE_QUEUE
	queue_part();
	parts++;
#endif
#ifdef CONC_HAVE_STACK
	stack_part();
	parts++;
#endif
#ifdef CONC_HAVE_POOL
	pool_part();
	parts++;
#endif
#if defined(CONC_HAVE_PARALLEL) && defined(CONC_HAVE_POOL)
	parallel_part();
	parts++;
#endif
	std::printf("cpp_consumer: %d primitives used, %d failures\n", parts, failures);
	return failures ? 1 : 0;
}
