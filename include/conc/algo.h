/*
 * conc/algo.h - parallel algorithms over arrays: sort, stable sort, radix
 * sorts of integer and floating-point keys, inclusive scan, filter.
 *
 * What C has is serial qsort; these are what rayon and oneTBB offer next to
 * their loops (par_sort_unstable, par_sort, tbb::parallel_sort,
 * tbb::parallel_scan, filter().collect()), built on conc/parallel.h.
 *
 *   static int cmp_u32(const void *a, const void *b, void *ctx) {
 *           (void)ctx;
 *           unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
 *           return (x > y) - (x < y);
 *   }
 *   conc_parallel_sort(NULL, v, n, sizeof *v, cmp_u32, NULL);
 *
 * Where the work runs.  p is the pool (NULL: conc_pool_global(); if that
 * cannot be created, everything runs on the calling thread).  The calling
 * thread takes part, as in conc_join; the calls nest (from pool tasks, from
 * the bodies of loops, from comparators even) and never deadlock, also on
 * a pool of one thread.  Inputs of at most CONC_ALGO_SERIAL_SORT elements
 * (the sorts) or CONC_ALGO_SERIAL_SCAN (scan and filter) are done on the
 * calling thread alone, without touching the pool (the global pool is not
 * even created).
 *
 * Determinism.  Every result is a function of the input alone: the same
 * bytes on 1, 2 or 16 threads, run after run.  The unstable sort splits
 * its input by pivots chosen at fixed positions (never by timing or
 * randomness), so which of two equal elements comes first is decided by
 * the data; the scan groups its operations by blocks whose boundaries
 * depend on n only, so floating-point results are bitwise reproducible.
 *
 * Elements.  Any size from 1 byte to several KiB (moved in place through
 * a small stack buffer, in chunks); 4-, 8- and 16-byte elements take
 * inlined copies.  The comparators follow qsort_r's convention (negative,
 * 0, positive for a < b, a == b, a > b) with ctx passed through; an
 * argument may point at a copy of an element (on the stack, or in the
 * stable sort's scratch) rather than into the array.  A
 * comparator that is not a consistent order (one that answers at random)
 * never makes a sort read or write outside the array: the array then
 * holds a permutation of its elements in an unspecified order.
 *
 * Thread safety: every function may be called by any number of threads at
 * once, on distinct arrays.  The callbacks (comparators, op, keep) run
 * concurrently with each other on disjoint elements and must be safe to run
 * so; they must not modify the array.  While a call runs, no other thread
 * may touch its array.  The pool must outlive every call on it.
 */
#ifndef CONC_ALGO_H
#define CONC_ALGO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Up to this many elements the sorts run on the calling thread alone. */
#define CONC_ALGO_SERIAL_SORT 4096u
/* Up to this many elements scan and filter run on the calling thread alone. */
#define CONC_ALGO_SERIAL_SCAN 16384u

/*
 * conc_parallel_sort - sort the n elements of size bytes at base into
 * ascending order of cmp, in place; not stable.
 *
 * A pattern-defeating quicksort: pivots are medians of elements at fixed
 * positions, the two sides of a partition are sorted by conc_join, pieces
 * below a few thousand elements by the serial algorithm (insertion sort
 * for tiny ones, heapsort when partitions keep coming out unbalanced, so
 * the worst case stays O(n log n)).  Already sorted, reversed and
 * all-equal inputs take O(n) comparisons.  No O(n)
 * scratch: the extra memory is O(log n) stack per thread.  Equal elements
 * end in an order that depends on the data only (see "Determinism").
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: what the caller did before the call happens-before every cmp
 *   call; every cmp call and every write to the array happen-before the
 *   return.
 * Progress: blocking (until the array is sorted).
 * Returns: 0; EINVAL (base NULL with n > 0, cmp NULL, size 0, or p destroyed in
 *   a debug-checks build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_sort(conc_pool *p, void *base, size_t n, size_t size,
		       int (*cmp)(const void *a, const void *b, void *ctx), void *ctx);

/*
 * conc_parallel_stable_sort - sort the n elements of size bytes at base
 * into ascending order of cmp, in place; equal elements keep their order.
 *
 * A parallel merge sort with n * size bytes of scratch, allocated first:
 * the halves are sorted by conc_join, and large merges are split in two by
 * a binary search and run by conc_join as well.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_sort.
 * Progress: blocking.
 * Returns: 0; ENOMEM (the scratch could not be allocated; the array is
 *   untouched); EINVAL (base NULL with n > 0, cmp NULL, size 0, or p destroyed in
 *   a debug-checks build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_stable_sort(conc_pool *p, void *base, size_t n, size_t size,
			      int (*cmp)(const void *a, const void *b, void *ctx),
			      void *ctx);

/*
 * conc_parallel_sort_u64 - sort n unsigned 64-bit numbers into ascending
 * order, in place.
 *
 * A radix sort, the compare inlined: one pass reads the keys' byte
 * histograms (blocks in parallel), one pass distributes the keys by their
 * highest byte that is not the same in all of them, then each of those
 * buckets is finished by a least-significant-digit radix sort in cache,
 * buckets in parallel; bytes that are the same in every key cost nothing.
 * The _u32, _i64 and _double variants below are the same sort.  The
 * scratch is n elements, allocated first; below CONC_ALGO_SERIAL_SORT
 * elements none (a pdqsort with the compare inlined, on this thread).
 * The output is the one sorted permutation of the input, whatever ran it.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_sort.
 * Progress: blocking.
 * Returns: 0; ENOMEM (the scratch could not be allocated; the array is
 *   untouched); EINVAL (a NULL with n > 0, or p destroyed in a
 *   debug-checks build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_sort_u64(conc_pool *p, uint64_t *a, size_t n);

/*
 * conc_parallel_sort_u32 - sort n unsigned 32-bit numbers into ascending
 * order, in place; the radix sort of conc_parallel_sort_u64 on 4 bytes.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_sort.
 * Progress: blocking.
 * Returns: as conc_parallel_sort_u64: 0; ENOMEM (array untouched); EINVAL
 *   (a NULL with n > 0, or p destroyed in a debug-checks build).
 */
int conc_parallel_sort_u32(conc_pool *p, uint32_t *a, size_t n);

/*
 * conc_parallel_sort_i64 - sort n signed 64-bit numbers into ascending
 * order, in place; the radix sort of conc_parallel_sort_u64 with the sign
 * bit flipped in the keys.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_sort.
 * Progress: blocking.
 * Returns: as conc_parallel_sort_u64: 0; ENOMEM (array untouched); EINVAL
 *   (a NULL with n > 0, or p destroyed in a debug-checks build).
 */
int conc_parallel_sort_i64(conc_pool *p, int64_t *a, size_t n);

/*
 * conc_parallel_sort_double - sort n doubles into IEEE 754 totalOrder, in
 * place: -NaN first, then -inf ... -0.0, +0.0 ... +inf, +NaN last (NaNs
 * among themselves by their payload bits, larger payloads further out).
 *
 * No comparison is undefined (NaNs have their place) and -0.0 sorts
 * before +0.0; the output is the sorted permutation of the input's bit
 * patterns.  The radix sort of conc_parallel_sort_u64 on keys made from
 * the bits: negatives with all bits flipped, the others with the sign bit
 * set.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_sort.
 * Progress: blocking.
 * Returns: as conc_parallel_sort_u64: 0; ENOMEM (array untouched); EINVAL
 *   (a NULL with n > 0, or p destroyed in a debug-checks build).
 */
int conc_parallel_sort_double(conc_pool *p, double *a, size_t n);

/*
 * conc_parallel_scan - inclusive prefix in place: element i becomes
 * x0 o x1 o ... o xi, where op(acc, x, ctx) sets acc = acc o x and o is
 * associative.
 *
 * The array is cut into chunks of three blocks (2 MiB of elements a
 * block, at least 1024 elements; the last chunk's blocks a third of what
 * is left, and fewer than 3072 elements left are scanned serially).  In
 * each chunk, with C its carry (the previous chunk's last element, once
 * scanned; none for the first): by conc_join, block 0 is scanned from C
 * (acc = C, then acc = acc o x, stored, for each element) while block 1 is
 * folded into its total T1; then C1 = block 0's last element and
 * C2 = C1 o T1; by conc_join, blocks 1 and 2 are scanned from C1 and C2.
 * The grouping is a function of n and size only: the same bits on any
 * number of threads (floating-point sums are bitwise reproducible); at or
 * below CONC_ALGO_SERIAL_SCAN elements it is the serial left fold.  Each
 * chunk costs four block passes, two per thread: at best 1.5x the serial
 * speed, on any number of threads (the price of a grouping that does not
 * depend on their number); a chunk stays in the shared cache between its
 * two steps, so the array is read from memory about once.  op is called
 * about 4n/3 times; acc is never an element of the array but a copy, on
 * the stack or (elements above 256 bytes) in one allocation of scratch,
 * aligned for max_align_t.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: what the caller did before the call happens-before every op
 *   call; every op call and write happen-before the return.
 * Progress: blocking.
 * Returns: 0; ENOMEM (the scratch could not be allocated; the array is
 *   untouched); EINVAL (base NULL with n > 0, op NULL, size 0, or p destroyed in
 *   a debug-checks build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_scan(conc_pool *p, void *base, size_t n, size_t size,
		       void (*op)(void *acc, const void *x, void *ctx), void *ctx);

/*
 * conc_parallel_scan_u64 - inclusive prefix sum of n uint64_t in place:
 * a[i] becomes a[0] + ... + a[i], mod 2^64.
 *
 * conc_parallel_scan with op acc += x, the addition inlined (the call
 * per element is what makes a generic scan slower than the plain loop).
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_scan.
 * Progress: blocking.
 * Returns: 0; EINVAL (a NULL with n > 0, or p destroyed in a debug-checks
 *   build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_scan_u64(conc_pool *p, uint64_t *a, size_t n);

/*
 * conc_parallel_scan_double - inclusive prefix sum of n doubles in place,
 * grouped as conc_parallel_scan groups (bitwise the same result as
 * conc_parallel_scan with op *acc += *x, on any number of threads).
 *
 * The addition is inlined, as in conc_parallel_scan_u64.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: as conc_parallel_scan.
 * Progress: blocking.
 * Returns: 0; EINVAL (a NULL with n > 0, or p destroyed in a debug-checks
 *   build; nothing done).  n 0 and 1 return 0 at once.
 */
int conc_parallel_scan_double(conc_pool *p, double *a, size_t n);

/*
 * conc_parallel_filter - copy the elements of src that keep accepts into
 * dst (room for n elements), in their order; *kept says how many.
 *
 * keep is called exactly once per element (blocks in parallel, in
 * index order within a block); its answers are kept in a bitmap of n bits
 * (scratch, allocated above CONC_ALGO_SERIAL_SCAN elements), then each
 * block copies its accepted elements to their place.  src and dst must
 * not overlap.  dst beyond the kept elements is not written.
 * Thread safety: any thread, also from pool tasks; see the overview.
 * Ordering: what the caller did before the call happens-before every keep
 *   call; every keep call and write to dst happen-before the return.
 * Progress: blocking.
 * Returns: 0; ENOMEM (the bitmap could not be allocated; dst and *kept
 *   untouched); EINVAL (src or dst NULL with n > 0, keep or kept NULL, size
 *   0, or p destroyed in a debug-checks build; nothing done).  n 0 sets *kept to 0.
 */
int conc_parallel_filter(conc_pool *p, const void *src, size_t n, size_t size,
			 bool (*keep)(const void *x, void *ctx), void *ctx,
			 void *dst, size_t *kept);

#ifdef __cplusplus
}
#endif

#endif
