// moodycamel.cpp - moodycamel::ConcurrentQueue (Debian libconcurrentqueue-dev,
// header-only) behind the C functions of cxx_peers.h, for bench_queue.
//
// Not a linearizable FIFO: moodycamel keeps one sub-queue per producer and
// promises FIFO order only among one producer's items; items of different
// producers can come out in any order.  libconc's queue (and the other peers)
// are linearizable FIFO across producers, so moodycamel does less.
//
// GCC 12 at -O3 reports a false -Wstringop-overflow inside the header's
// enqueue_bulk (an atomic load it inlines into mc_push_bulk); silenced for
// this file only, which is third-party code behind a thin adapter.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#include <concurrentqueue/concurrentqueue.h>

#include <new>

#include "cxx_peers.h"

typedef moodycamel::ConcurrentQueue<uintptr_t> mcq;

namespace {
struct tokens {
	moodycamel::ProducerToken p;
	moodycamel::ConsumerToken c;
	explicit tokens(mcq &q) : p(q), c(q) {}
};
} // namespace

extern "C" {

void *mc_create(void) { return new mcq(); }
void mc_destroy(void *q) { delete static_cast<mcq *>(q); }

bool mc_push(void *q, uintptr_t v) { return static_cast<mcq *>(q)->enqueue(v); }
bool mc_pop(void *q, uintptr_t *v) { return static_cast<mcq *>(q)->try_dequeue(*v); }

void *mc_tokens_new(void *q) { return new tokens(*static_cast<mcq *>(q)); }
void mc_tokens_free(void *t) { delete static_cast<tokens *>(t); }

bool mc_push_tok(void *q, void *t, uintptr_t v)
{
	return static_cast<mcq *>(q)->enqueue(static_cast<tokens *>(t)->p, v);
}

bool mc_pop_tok(void *q, void *t, uintptr_t *v)
{
	return static_cast<mcq *>(q)->try_dequeue(static_cast<tokens *>(t)->c, *v);
}

bool mc_push_bulk(void *q, void *t, const uintptr_t *v, size_t n)
{
	return static_cast<mcq *>(q)->enqueue_bulk(static_cast<tokens *>(t)->p, v, n);
}

size_t mc_pop_bulk(void *q, void *t, uintptr_t *v, size_t max)
{
	return static_cast<mcq *>(q)->try_dequeue_bulk(static_cast<tokens *>(t)->c, v, max);
}
}
