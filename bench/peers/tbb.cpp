// tbb.cpp - oneTBB peers of bench_pool and bench_parallel (issue 20):
// task_group (W9a), parallel_invoke fib (W9c) and parallel_reduce (W5),
// each inside a task_arena of the requested concurrency made once.  The C
// face is in cxx_peers.h.
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_invoke.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <cstdint>

#include "cxx_peers.h"

void *tbb_arena_new(unsigned threads)
{
	auto *a = new tbb::task_arena(static_cast<int>(threads));
	a->initialize();
	return a;
}

void tbb_arena_free(void *arena)
{
	delete static_cast<tbb::task_arena *>(arena);
}

void tbb_groups(void *arena, unsigned groups, unsigned tasks, void (*fn)(void *), void *arg)
{
	static_cast<tbb::task_arena *>(arena)->execute([=] {
		for (unsigned g = 0; g < groups; g++) {
			tbb::task_group tg;
			for (unsigned t = 0; t < tasks; t++)
				tg.run([=] { fn(arg); });
			tg.wait();
		}
	});
}

static uint64_t fib(unsigned n)
{
	if (n < 2)
		return n;
	uint64_t a = 0, b = 0;
	tbb::parallel_invoke([&] { a = fib(n - 1); }, [&] { b = fib(n - 2); });
	return a + b;
}

uint64_t tbb_fib(void *arena, unsigned n)
{
	uint64_t r = 0;
	static_cast<tbb::task_arena *>(arena)->execute([&] { r = fib(n); });
	return r;
}

uint64_t tbb_sum2e(void *arena, uint64_t n)
{
	uint64_t r = 0;
	static_cast<tbb::task_arena *>(arena)->execute([&] {
		r = tbb::parallel_reduce(
			tbb::blocked_range<uint64_t>(0, n), uint64_t{0},
			[](const tbb::blocked_range<uint64_t> &rg, uint64_t s) {
				for (uint64_t e = rg.begin(); e != rg.end(); e++) {
					uint64_t x = 2 * e;
					__asm__ __volatile__("" : "+r"(x));
					s += x;
				}
				return s;
			},
			[](uint64_t a, uint64_t b) { return a + b; });
	});
	return r;
}

void tbb_map(void *arena, uint64_t *out, uint64_t n)
{
	static_cast<tbb::task_arena *>(arena)->execute([&] {
		tbb::parallel_for(tbb::blocked_range<uint64_t>(0, n),
				  [out](const tbb::blocked_range<uint64_t> &rg) {
					  for (uint64_t e = rg.begin(); e != rg.end(); e++) {
						  uint64_t x = e;
						  for (uint64_t r = 0; r < 150; r++) {
							  x ^= x >> 29;
							  x *= 0x9E3779B97F4A7C15ull;
							  x += r;
						  }
						  __asm__ __volatile__("" : "+r"(x));
						  out[e] = x;
					  }
				  });
	});
}
