// chan_cxx.cpp - the C++ peers of bench_chan: oneTBB's
// concurrent_bounded_queue (blocking push on a capacity, blocking pop) and
// moodycamel::BlockingConcurrentQueue (unbounded, blocking wait_dequeue).
// Neither can be closed, so a workload's end is signalled the way their
// users do it: one poison value (0) per receiver (see run_w7a).
// Each function runs a whole workload (W7a shape: p senders of n distinct
// values, p receivers), times it and checks count and sum; it returns the
// seconds, or a negative value when the result was wrong.  Compiled only
// where the headers are (meson: BENCH_HAVE_TBB / BENCH_HAVE_MOODYCAMEL).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "chan_cxx.h"

#if defined(BENCH_HAVE_TBB)
#include <tbb/concurrent_queue.h>
#endif
#if defined(BENCH_HAVE_MOODYCAMEL)
#include <concurrentqueue/blockingconcurrentqueue.h>
#endif

namespace {

/* fifo: the queue is linearizable FIFO (TBB), so the last sender's poison
 * values come after every item.  moodycamel is FIFO per producer only: a
 * poison could overtake another producer's items, so there the receiver
 * that takes the last item (a shared count) sends the poison instead - one
 * more fetch-and-add per item, which its users pay too. */
template <class Push, class Pop>
double run_w7a(unsigned p, uint64_t n, bool fifo, Push push, Pop pop)
{
	std::atomic<uint64_t> count{0}, sum{0}, taken{0};
	std::atomic<unsigned> left{p};
	uint64_t total = uint64_t(p) * n;
	auto t0 = std::chrono::steady_clock::now();
	std::vector<std::thread> ts;
	for (unsigned r = 0; r < p; r++)
		ts.emplace_back([&] {
			uint64_t c = 0, s = 0, v = 0;
			for (;;) {
				pop(v);
				if (v == 0)
					break;
				c++;
				s += v;
				if (!fifo && taken.fetch_add(1) + 1 == total)
					for (unsigned k = 0; k < p; k++)
						push(0);
			}
			count += c;
			sum += s;
		});
	for (unsigned i = 0; i < p; i++)
		ts.emplace_back([&, i] {
			for (uint64_t k = 0; k < n; k++)
				push(uint64_t(i) * n + k + 1);
			if (fifo && --left == 0) // the last sender "closes"
				for (unsigned r = 0; r < p; r++)
					push(0);
		});
	for (auto &t : ts)
		t.join();
	double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	if (count != total || sum != total * (total + 1) / 2)
		return -1;
	return secs;
}

} // namespace

extern "C" {

#if defined(BENCH_HAVE_TBB)
double tbb_w7a(unsigned p, uint64_t n, uint64_t cap)
{
	tbb::concurrent_bounded_queue<uint64_t> q;
	if (cap != UINT64_MAX)
		q.set_capacity(std::ptrdiff_t(cap));
	return run_w7a(p, n, true, [&](uint64_t v) { q.push(v); }, [&](uint64_t &v) { q.pop(v); });
}

void *tbb_idle_new(void) { return new tbb::concurrent_bounded_queue<uint64_t>(); }
void tbb_idle_pop(void *q)
{
	uint64_t v;
	static_cast<tbb::concurrent_bounded_queue<uint64_t> *>(q)->pop(v);
}
void tbb_idle_push(void *q) { static_cast<tbb::concurrent_bounded_queue<uint64_t> *>(q)->push(1); }
void tbb_idle_free(void *q) { delete static_cast<tbb::concurrent_bounded_queue<uint64_t> *>(q); }
#endif

#if defined(BENCH_HAVE_MOODYCAMEL)
double mcb_w7a(unsigned p, uint64_t n)
{
	moodycamel::BlockingConcurrentQueue<uint64_t> q;
	return run_w7a(p, n, false, [&](uint64_t v) { q.enqueue(v); }, [&](uint64_t &v) { q.wait_dequeue(v); });
}

void *mcb_idle_new(void) { return new moodycamel::BlockingConcurrentQueue<uint64_t>(); }
void mcb_idle_pop(void *q)
{
	uint64_t v;
	static_cast<moodycamel::BlockingConcurrentQueue<uint64_t> *>(q)->wait_dequeue(v);
}
void mcb_idle_push(void *q) { static_cast<moodycamel::BlockingConcurrentQueue<uint64_t> *>(q)->enqueue(1); }
void mcb_idle_free(void *q) { delete static_cast<moodycamel::BlockingConcurrentQueue<uint64_t> *>(q); }
#endif

} // extern "C"
