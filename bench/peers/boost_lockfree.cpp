// boost_lockfree.cpp - boost::lockfree::queue<void *> and stack<void *>
// (Debian libboost-dev, header-only) behind the C functions of cxx_peers.h,
// for bench_queue and bench_stack.  Both are node-based with a free list
// (fixed_sized<false>, the default): push allocates when the free list is
// empty, so neither needs a capacity; the initial reserve (1024 nodes) is
// what boost's examples use.
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/stack.hpp>

#include "cxx_peers.h"

typedef boost::lockfree::queue<void *, boost::lockfree::fixed_sized<false>> bq;
typedef boost::lockfree::stack<void *, boost::lockfree::fixed_sized<false>> bs;

extern "C" {

void *bq_create(void) { return new bq(1024); }
void bq_destroy(void *q) { delete static_cast<bq *>(q); }
bool bq_push(void *q, uintptr_t v) { return static_cast<bq *>(q)->push(reinterpret_cast<void *>(v)); }

bool bq_pop(void *q, uintptr_t *v)
{
	void *p;
	if (!static_cast<bq *>(q)->pop(p))
		return false;
	*v = reinterpret_cast<uintptr_t>(p);
	return true;
}

void *bs_create(void) { return new bs(1024); }
void bs_destroy(void *s) { delete static_cast<bs *>(s); }
bool bs_push(void *s, uintptr_t v) { return static_cast<bs *>(s)->push(reinterpret_cast<void *>(v)); }

bool bs_pop(void *s, uintptr_t *v)
{
	void *p;
	if (!static_cast<bs *>(s)->pop(p))
		return false;
	*v = reinterpret_cast<uintptr_t>(p);
	return true;
}
}
