/*
 * algo.c - parallel sort, stable sort, radix sorts, scan and filter over
 * arrays (conc/algo.h), on conc_join and conc_parallel_for.
 *
 * No atomics here: every piece of parallel work is a conc_join half or a
 * conc_parallel_for body, and those calls order everything (what the
 * caller did before the call happens-before each half; each half
 * happens-before the call's return).  Concurrent halves always work on
 * disjoint ranges of the array and of the scratch; the few elements two
 * halves may both read (the pivot before a range, the scan's carries)
 * nobody writes while they run.
 *
 * Determinism.  The split trees depend on the data and on n only, never on
 * the thread count or on timing: conc_join runs both halves whoever runs
 * them, and every decision (pivot, split point, cutoff) is made from the
 * elements at fixed positions.  So the same input gives the same bytes.
 *
 * Unstable sort: pattern-defeating quicksort (Orson Peters, 2021), without
 * the branchless block partition: pivot median of 3 (ninther above 128
 * elements) moved to the front; Hoare partition stopping on equal
 * elements both ways; a range whose predecessor (the pivot before it)
 * equals its pivot is split as "<= pivot | > pivot" and the left part is
 * done (many equal keys end in O(n)); a partition that did no swap tries
 * a bounded insertion sort of each side (sorted inputs in O(n)); an
 * unbalanced one (a side below n/8) swaps a few elements at fixed
 * positions to break the pattern, and after log2(n) of those the range is
 * heapsorted (O(n log n) worst case).  Above CONC_ALGO_SERIAL_SORT
 * elements the two sides are sorted by conc_join.
 * Bounds under an inconsistent comparator: every loop that scans checks
 * its index against the range's ends (no sentinel is trusted), insertion
 * sorts move by swaps down to index 0 at most, heapsort's children are
 * checked against the heap's size; so every access stays inside the range
 * and every write is a swap of two elements in it: a permutation.
 *
 * Stable sort: top-down merge sort ping-ponging between the array and an
 * n-element scratch (a half sorted "into the other buffer" is merged back);
 * insertion sort below 16 elements; halves above the cutoff by conc_join,
 * merges above it split at the median of the longer run (binary search
 * for its rank in the other) and run by conc_join.  Each output slot is
 * written from exactly one input, comparator or not.
 *
 * Radix sorts: see conc/algo.h; the keys are the stored bits mapped so
 * that unsigned order is the wanted order (i64: flip the sign bit;
 * double: flip all bits of negatives, the sign bit of the others).
 *
 * Scan: chunks of 3 blocks (the block size depends on the element size
 * only, the last chunk's on n): see the comment at scan_chunk.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/algo.h"
#include "conc/parallel.h"

#include "base/fault.h"
#include "pool/pool_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* gcc 12 with -fsanitize=address,undefined warns "writing 8 bytes into a
 * region of size 0" at the element moves of the inlined sorts: a false
 * positive of its object-size tracking through the pointer loops (every
 * access is inside [base, base + n * size), which ASan itself checks at
 * run time in that very build, and the plain gcc and clang builds see
 * nothing).  Silenced for this file (pushed here, popped at its end, so
 * that the single header does not silence it for its includer), for gcc
 * alone. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

typedef int (*cmp_fn)(const void *a, const void *b, void *ctx);

/* A loop over nb blocks, one block per piece.  Our bodies return 0, so
 * conc_parallel_for fails only before running anything (a pool destroyed
 * meanwhile, in a debug-checks build): then the blocks run here. */
static void pfor(conc_pool *p, size_t nb, int (*body)(size_t, size_t, void *), void *ctx)
{
	if (conc_parallel_for(p, 0, nb, 1, body, ctx))
		body(0, nb, ctx);
}

/* ---- element moves ---------------------------------------------------------- */

/* Swap two elements through a 64-byte buffer; with a constant size the
 * compiler makes this a few register moves. */
ALWAYS_INLINE void el_swap(char *a, char *b, size_t size)
{
	unsigned char t[64];
	while (size > sizeof t) {
		memcpy(t, a, sizeof t);
		memcpy(a, b, sizeof t);
		memcpy(b, t, sizeof t);
		a += sizeof t;
		b += sizeof t;
		size -= sizeof t;
	}
	memcpy(t, a, size);
	memcpy(a, b, size);
	memcpy(b, t, size);
}

#define EL(a, i) ((a) + (size_t)(i) * size)
#define LESS(x, y) (cmp((x), (y), ctx) < 0)

/* ---- serial pieces (size is a constant in the fast paths) -------------------- */

/* Insertion sort by adjacent swaps: stable, in bounds whatever cmp says.
 * (Pointers, not indexes, throughout the hot loops: they stay in
 * registers across the comparator calls.) */
ALWAYS_INLINE void ins_sort(char *a, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	char *end = EL(a, n);
	if (size <= 64) {
		/* Move, not swap: the element waits in tmp while the larger
		 * ones shift up (cmp then sees tmp's address, a copy). */
		alignas(max_align_t) unsigned char tmp[64];
		for (char *i = a + size; i < end; i += size) {
			if (!LESS(i, i - size))
				continue;
			memcpy(tmp, i, size);
			char *j = i;
			do {
				memcpy(j, j - size, size);
				j -= size;
			} while (j > a && LESS(tmp, j - size));
			memcpy(j, tmp, size);
		}
		return;
	}
	for (char *i = a + size; i < end; i += size)
		for (char *j = i; j > a && LESS(j, j - size); j -= size)
			el_swap(j, j - size, size);
}

/* pdqsort's partial insertion sort: gives up (false) after 8 moves. */
ALWAYS_INLINE bool partial_ins_sort(char *a, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	size_t moves = 0;
	char *end = EL(a, n);
	for (char *i = a + size; i < end; i += size) {
		for (char *j = i; j > a && LESS(j, j - size); j -= size) {
			el_swap(j, j - size, size);
			moves++;
		}
		if (moves > 8)
			return false;
	}
	return true;
}

ALWAYS_INLINE void sift_down(char *a, size_t i, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && LESS(EL(a, c), EL(a, c + 1)))
			c++;
		if (!LESS(EL(a, i), EL(a, c)))
			return;
		el_swap(EL(a, i), EL(a, c), size);
		i = c;
	}
}

ALWAYS_INLINE void heap_sort(char *a, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(a, i, n, size, cmp, ctx);
	for (size_t e = n; e-- > 1;) {
		el_swap(EL(a, 0), EL(a, e), size);
		sift_down(a, 0, e, size, cmp, ctx);
	}
}

/* Order a[i] <= a[j] <= a[k] by swaps. */
ALWAYS_INLINE void sort3(char *a, size_t i, size_t j, size_t k, size_t size, cmp_fn cmp, void *ctx)
{
	if (LESS(EL(a, j), EL(a, i)))
		el_swap(EL(a, i), EL(a, j), size);
	if (LESS(EL(a, k), EL(a, j))) {
		el_swap(EL(a, j), EL(a, k), size);
		if (LESS(EL(a, j), EL(a, i)))
			el_swap(EL(a, i), EL(a, j), size);
	}
}

/* The pivot, by position only, moved to a[0] (n > 24). */
ALWAYS_INLINE void choose_pivot(char *a, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	size_t h = n / 2;
	if (n > 128) {
		sort3(a, 0, h, n - 1, size, cmp, ctx);
		sort3(a, 1, h - 1, n - 2, size, cmp, ctx);
		sort3(a, 2, h + 1, n - 3, size, cmp, ctx);
		sort3(a, h - 1, h, h + 1, size, cmp, ctx);
		el_swap(EL(a, 0), EL(a, h), size);
	} else {
		sort3(a, h, 0, n - 1, size, cmp, ctx);
	}
}

/*
 * Partition a[1..n) around the pivot a[0] (n >= 2): elements that are not
 * above it end left, elements that are not below it end right; the pivot
 * goes to the returned index p, so a[0..p) | a[p] | a[p+1..n).  Both scans
 * stop on equal elements (balanced splits of equal keys) and are bounded
 * by i <= j, never by a sentinel.  *swapped: whether any swap was done.
 */
ALWAYS_INLINE size_t partition_right(char *a, size_t n, bool *swapped, size_t size,
				     cmp_fn cmp, void *ctx)
{
	const char *pv = a;
	char *i = a + size, *j = EL(a, n - 1);
	bool sw = false;
	for (;;) {
		while (i <= j && LESS(i, pv))
			i += size;
		while (i <= j && LESS(pv, j))
			j -= size;
		if (i >= j)
			break;
		el_swap(i, j, size);
		sw = true;
		i += size;
		j -= size;
	}
	/* i > j: a[1..i) left, a[i..n) right, i == j + 1; i == j: a[j] is
	 * neither below nor above the pivot.  Either way j is the pivot's
	 * place (j >= a: j only drops below i while i >= a + 1). */
	el_swap(a, j, size);
	*swapped = sw;
	return (size_t)(j - a) / size;
}

/* Partition a[1..n) into "not above a[0]" | "above a[0]"; returns the
 * pivot's place.  Used when the pivot equals the range's predecessor:
 * the left side is then all equal to it (for a consistent order). */
ALWAYS_INLINE size_t partition_left(char *a, size_t n, size_t size, cmp_fn cmp, void *ctx)
{
	const char *pv = a;
	char *i = a + size, *j = EL(a, n - 1);
	for (;;) {
		while (i <= j && !LESS(pv, i))
			i += size;
		while (i <= j && LESS(pv, j))
			j -= size;
		if (i >= j)
			break;
		el_swap(i, j, size);
		i += size;
		j -= size;
	}
	el_swap(a, j, size);
	return (size_t)(j - a) / size;
}

/* Break a pattern that gave an unbalanced partition: swap a few elements
 * at fixed positions of the side a[0..m) (pdqsort's choice). */
ALWAYS_INLINE void break_pattern(char *a, size_t m, size_t size)
{
	size_t q = m / 4;
	el_swap(EL(a, 0), EL(a, q), size);
	el_swap(EL(a, m - 1), EL(a, m - q), size);
	if (m > 128) {
		el_swap(EL(a, 1), EL(a, q + 1), size);
		el_swap(EL(a, 2), EL(a, q + 2), size);
		el_swap(EL(a, m - 2), EL(a, m - (q + 1)), size);
		el_swap(EL(a, m - 3), EL(a, m - (q + 2)), size);
	}
}

static unsigned log2_floor(size_t n)
{
	unsigned l = 0;
	while (n >>= 1)
		l++;
	return l;
}

/* Tiny ranges: insertion sort; smaller for big elements. */
#define INS_MAX(size) ((size) <= 16 ? 24u : 12u)

/*
 * One step of pdqsort on a[0..n): returns false when the range is done;
 * else partitions it and sets *p (the pivot's place) and whether the left
 * side a[0..p) still needs sorting (*left; false when it is all equal to
 * the pivot).  pred: the element just before the range (the pivot that
 * made it), NULL for the leftmost range.  *bad counts down the unbalanced
 * partitions left before heapsort.
 */
ALWAYS_INLINE bool pdq_step(char *a, size_t n, const char *pred, int *bad, size_t *p,
			    bool *left, size_t size, cmp_fn cmp, void *ctx)
{
	if (n <= INS_MAX(size)) {
		ins_sort(a, n, size, cmp, ctx);
		return false;
	}
	choose_pivot(a, n, size, cmp, ctx);
	if (pred && !LESS(pred, a)) {
		*p = partition_left(a, n, size, cmp, ctx);
		*left = false;
		return true;
	}
	bool swapped;
	size_t q = partition_right(a, n, &swapped, size, cmp, ctx);
	size_t l = q, r = n - q - 1;
	*p = q;
	*left = true;
	if (l < n / 8 || r < n / 8) {
		if (--*bad <= 0) {
			/* undo nothing: the range is a permutation; finish it */
			heap_sort(a, n, size, cmp, ctx);
			return false;
		}
		if (l >= INS_MAX(size))
			break_pattern(a, l, size);
		if (r >= INS_MAX(size))
			break_pattern(EL(a, q + 1), r, size);
	} else if (!swapped) {
		if (partial_ins_sort(a, l, size, cmp, ctx) &&
		    partial_ins_sort(EL(a, q + 1), r, size, cmp, ctx))
			return false;
	}
	return true;
}

typedef void (*pdq_fn)(char *a, size_t n, const char *pred, int bad, size_t size,
		       cmp_fn cmp, void *ctx);

/* Serial pdqsort: recurse into the smaller side, loop on the larger. */
ALWAYS_INLINE void pdq_body(char *a, size_t n, const char *pred, int bad, size_t size,
			    cmp_fn cmp, void *ctx, pdq_fn self)
{
	size_t p;
	bool left;
	while (pdq_step(a, n, pred, &bad, &p, &left, size, cmp, ctx)) {
		char *ra = EL(a, p + 1);
		size_t rn = n - p - 1;
		if (!left) {
			pred = EL(a, p);
			a = ra;
			n = rn;
		} else if (p < rn) {
			self(a, p, pred, bad, size, cmp, ctx);
			pred = EL(a, p);
			a = ra;
			n = rn;
		} else {
			self(ra, rn, EL(a, p), bad, size, cmp, ctx);
			n = p;
		}
	}
}

/* ---- the unstable sort, parallel ------------------------------------------- */

struct psort {
	conc_pool *p;
	cmp_fn cmp;
	void *ctx;
	size_t size;
	pdq_fn serial;
};

struct pjob {
	const struct psort *s;
	char *a;
	size_t n;
	const char *pred;
	int bad;
	void (*run)(void *);
};

/* Above the cutoff: one pdq step, then both sides by conc_join.  The
 * sides are disjoint; pred (the pivot between them, or before the range)
 * is read by both and written by neither. */
ALWAYS_INLINE void psort_body(struct pjob *j, size_t size, cmp_fn cmp)
{
	const struct psort *s = j->s;
	void *ctx = s->ctx;
	char *a = j->a;
	size_t n = j->n;
	const char *pred = j->pred;
	int bad = j->bad;
	while (n > CONC_ALGO_SERIAL_SORT) {
		size_t p;
		bool left;
		if (!pdq_step(a, n, pred, &bad, &p, &left, size, cmp, ctx))
			return;
		char *ra = EL(a, p + 1);
		size_t rn = n - p - 1;
		if (!left) {
			pred = EL(a, p);
			a = ra;
			n = rn;
			continue;
		}
		struct pjob l = {s, a, p, pred, bad, j->run};
		struct pjob r = {s, ra, rn, EL(a, p), bad, j->run};
		/* conc_join fails only for NULL functions or a destroyed pool
		 * (debug builds): run both here then. */
		if (conc_join(s->p, j->run, &l, j->run, &r)) {
			j->run(&l);
			j->run(&r);
		}
		return;
	}
	s->serial(a, n, pred, bad, size, cmp, ctx);
}

#define DEFINE_SORT(SFX, SIZE)                                                      \
	static void pdq_##SFX(char *a, size_t n, const char *pred, int bad, size_t size, \
			      cmp_fn cmp, void *ctx)                                 \
	{                                                                           \
		(void)size;                                                         \
		pdq_body(a, n, pred, bad, SIZE, cmp, ctx, pdq_##SFX);               \
	}                                                                           \
	static void psort_##SFX(void *arg)                                          \
	{                                                                           \
		struct pjob *j = arg;                                               \
		size_t size = j->s->size;                                           \
		(void)size;                                                         \
		psort_body(j, SIZE, j->s->cmp);                                     \
	}
DEFINE_SORT(4, 4)
DEFINE_SORT(8, 8)
DEFINE_SORT(16, 16)
DEFINE_SORT(any, size)

int conc_parallel_sort(conc_pool *p, void *base, size_t n, size_t size,
		       int (*cmp)(const void *a, const void *b, void *ctx), void *ctx)
{
	if ((!base && n > 0) || !cmp || size == 0 || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n < 2)
		return 0;
	struct psort s = {p, cmp, ctx, size, pdq_any};
	void (*run)(void *) = psort_any;
	if (size == 4) {
		s.serial = pdq_4;
		run = psort_4;
	} else if (size == 8) {
		s.serial = pdq_8;
		run = psort_8;
	} else if (size == 16) {
		s.serial = pdq_16;
		run = psort_16;
	}
	struct pjob j = {&s, base, n, NULL, (int)log2_floor(n) + 1, run};
	if (n <= CONC_ALGO_SERIAL_SORT)
		s.serial(base, n, NULL, j.bad, size, cmp, ctx); /* pool untouched */
	else
		run(&j);
	return 0;
}

/* ---- the stable sort -------------------------------------------------------- */

#define MS_INS 16u

struct msort {
	conc_pool *p;
	cmp_fn cmp;
	void *ctx;
	size_t size;
	void (*sort)(void *);  /* the msort job of this size */
	void (*merge)(void *); /* the merge job of this size */
};

/* Sort a[0..n) leaving the result in a (to_t false) or in t (to_t true);
 * the other buffer is scratch. */
struct mjob {
	const struct msort *s;
	char *a, *t;
	size_t n;
	bool to_t;
};

/* Merge x[0..m) and y[0..k) into out (disjoint from both): y's element
 * goes first only when it is below x's, so equal ones keep x first. */
struct mergejob {
	const struct msort *s;
	const char *x, *y;
	size_t m, k;
	char *out;
};

ALWAYS_INLINE void merge_serial(const char *x, size_t m, const char *y, size_t k, char *out,
				size_t size, cmp_fn cmp, void *ctx)
{
	const char *xe = EL(x, m), *ye = EL(y, k);
	if (m && k && !LESS(y, xe - size)) {
		/* already in order (sorted inputs): one compare */
		memcpy(out, x, m * size);
		memcpy(EL(out, m), y, k * size);
		return;
	}
	while (x < xe && y < ye) {
		if (LESS(y, x)) {
			memcpy(out, y, size);
			y += size;
		} else {
			memcpy(out, x, size);
			x += size;
		}
		out += size;
	}
	if (x < xe)
		memcpy(out, x, (size_t)(xe - x));
	else if (y < ye)
		memcpy(out, y, (size_t)(ye - y));
}

ALWAYS_INLINE void merge_body(struct mergejob *mj, size_t size, cmp_fn cmp)
{
	const struct msort *s = mj->s;
	void *ctx = s->ctx;
	const char *x = mj->x, *y = mj->y;
	size_t m = mj->m, k = mj->k;
	if (m + k <= CONC_ALGO_SERIAL_SORT || m == 0 || k == 0) {
		merge_serial(x, m, y, k, mj->out, size, cmp, ctx);
		return;
	}
	size_t i, j;
	if (m >= k) {
		/* x[i] and the y's below it go left: j = first y not below x[i] */
		i = m / 2;
		size_t lo = 0, hi = k;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (LESS(EL(y, mid), EL(x, i)))
				lo = mid + 1;
			else
				hi = mid;
		}
		j = lo;
	} else {
		/* y[j] goes right after the x's not above it: i = first x above y[j] */
		j = k / 2;
		size_t lo = 0, hi = m;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (LESS(EL(y, j), EL(x, mid)))
				hi = mid;
			else
				lo = mid + 1;
		}
		i = lo;
	}
	/* Both parts are smaller than m + k (the split takes at least half
	 * of the longer run's elements out of each... of one side). */
	struct mergejob l = {s, x, y, i, j, mj->out};
	struct mergejob r = {s, EL(x, i), EL(y, j), m - i, k - j, EL(mj->out, i + j)};
	if (conc_join(s->p, s->merge, &l, s->merge, &r)) {
		s->merge(&l);
		s->merge(&r);
	}
}

ALWAYS_INLINE void msort_body(struct mjob *j, size_t size, cmp_fn cmp)
{
	const struct msort *s = j->s;
	void *ctx = s->ctx;
	size_t n = j->n;
	if (n <= MS_INS) {
		char *d = j->a;
		if (j->to_t) {
			memcpy(j->t, j->a, n * size);
			d = j->t;
		}
		ins_sort(d, n, size, cmp, ctx);
		return;
	}
	size_t h = n / 2;
	struct mjob l = {s, j->a, j->t, h, !j->to_t};
	struct mjob r = {s, EL(j->a, h), EL(j->t, h), n - h, !j->to_t};
	if (n > CONC_ALGO_SERIAL_SORT) {
		if (conc_join(s->p, s->sort, &l, s->sort, &r)) {
			s->sort(&l);
			s->sort(&r);
		}
	} else {
		s->sort(&l);
		s->sort(&r);
	}
	/* the halves are in the other buffer: merge them into ours */
	const char *src = j->to_t ? j->a : j->t;
	char *dst = j->to_t ? j->t : j->a;
	struct mergejob mj = {s, src, EL(src, h), h, n - h, dst};
	if (n > CONC_ALGO_SERIAL_SORT)
		s->merge(&mj);
	else
		merge_serial(src, h, EL(src, h), n - h, dst, size, cmp, ctx);
}

#define DEFINE_MSORT(SFX, SIZE)                                                      \
	static void msort_##SFX(void *arg)                                           \
	{                                                                            \
		struct mjob *j = arg;                                                \
		size_t size = j->s->size;                                            \
		(void)size;                                                          \
		msort_body(j, SIZE, j->s->cmp);                                      \
	}                                                                            \
	static void merge_##SFX(void *arg)                                           \
	{                                                                            \
		struct mergejob *j = arg;                                            \
		size_t size = j->s->size;                                            \
		(void)size;                                                          \
		merge_body(j, SIZE, j->s->cmp);                                      \
	}
DEFINE_MSORT(4, 4)
DEFINE_MSORT(8, 8)
DEFINE_MSORT(16, 16)
DEFINE_MSORT(any, size)

int conc_parallel_stable_sort(conc_pool *p, void *base, size_t n, size_t size,
			      int (*cmp)(const void *a, const void *b, void *ctx),
			      void *ctx)
{
	if ((!base && n > 0) || !cmp || size == 0 || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n < 2)
		return 0;
	if (n <= MS_INS) {
		/* insertion sort is stable and needs no scratch */
		if (size == 8)
			ins_sort(base, n, 8, cmp, ctx);
		else
			ins_sort(base, n, size, cmp, ctx);
		return 0;
	}
	if (n > SIZE_MAX / size)
		return ENOMEM;
	char *t = conc__malloc("algo.stable_sort", n * size);
	if (!t)
		return ENOMEM;
	struct msort s = {p, cmp, ctx, size, msort_any, merge_any};
	if (size == 4) {
		s.sort = msort_4;
		s.merge = merge_4;
	} else if (size == 8) {
		s.sort = msort_8;
		s.merge = merge_8;
	} else if (size == 16) {
		s.sort = msort_16;
		s.merge = merge_16;
	}
	struct mjob j = {&s, base, t, n, false};
	s.sort(&j);
	free(t);
	return 0;
}

/* ---- radix sorts ------------------------------------------------------------ */

/*
 * Keys: the stored bits mapped to an unsigned whose order is the wanted
 * one.  Storage goes through may_alias types: a double array is read and
 * written as its 64-bit patterns.
 *
 * Passes (blocks of RADIX_BLOCK elements, their boundaries a function of n,
 * in parallel):
 *   1. each block's OR and AND of its keys: the bits that vary between
 *      keys are OR ^ AND over all blocks; hb is the highest one + 1;
 *   2. each block's histogram of the top digit, the RADIX_BITS bits below
 *      hb (bits [shift, hb), shift = hb - RADIX_BITS or 0);
 *   3. each block scatters its keys a -> t by that digit (blocks in order
 *      within a bucket, so each bucket keeps the input's order);
 *   4. each bucket (~n / 1024 keys: in the core's cache) is sorted t -> a
 *      by an LSD radix sort over the bits below shift, 11 at a time
 *      (2048 counters: in L1), skipping digits that are the same in every
 *      key of the bucket.
 * So memory is read three times and written twice, whatever the key
 * width; the rest happens in cache.  The 1024 streams of pass 3 stay
 * within the TLB's reach.
 */
typedef uint64_t __attribute__((may_alias)) ru64;
typedef uint32_t __attribute__((may_alias)) ru32;

enum rkind { RK_U64, RK_I64, RK_F64, RK_U32 };

ALWAYS_INLINE uint64_t rkey(uint64_t x, enum rkind k)
{
	switch (k) {
	case RK_I64:
		return x ^ (UINT64_C(1) << 63);
	case RK_F64:
		/* negatives: all bits flipped (more negative, smaller);
		 * others: the sign bit set (above every negative) */
		return x ^ ((uint64_t)((int64_t)x >> 63) | (UINT64_C(1) << 63));
	default:
		return x;
	}
}

#define RADIX_BLOCK 65536u /* elements per block of passes 1-3 */
#define RADIX_MAX_BLOCKS 64u
#define RADIX_BITS 10u
#define RADIX_BUCKETS (1u << RADIX_BITS)
#define RADIX_INS 32u      /* buckets this small: insertion sort */
#define LSD_BITS 11u       /* digit of the buckets' LSD passes */
#define LSD_MASK ((1u << LSD_BITS) - 1)

struct radix {
	void *a, *t;      /* the array and the scratch */
	size_t n, nb, bs; /* elements, blocks, block size (the last may be short) */
	unsigned shift;   /* the top digit is (key >> shift) & (RADIX_BUCKETS - 1) */
	uint64_t *orand;  /* [nb][2]: each block's OR and AND */
	size_t *hist;     /* [nb][RADIX_BUCKETS], then the scatter offsets */
	size_t bstart[RADIX_BUCKETS + 1]; /* bucket v is [bstart[v], bstart[v+1]) */
};

#define HIST(r, b) ((r)->hist + (size_t)(b) * RADIX_BUCKETS)

/* Per element type: the passes, and the in-cache LSD sort of one bucket. */
#define DEFINE_RADIX(SFX, T, NBYTES, KIND)                                           \
	ALWAYS_INLINE uint64_t key_##SFX(T x)                                        \
	{                                                                            \
		return rkey((uint64_t)x, KIND);                                      \
	}                                                                            \
	static void ins_##SFX(T *a, size_t n)                                        \
	{                                                                            \
		for (size_t i = 1; i < n; i++) {                                     \
			T x = a[i];                                                  \
			uint64_t kx = key_##SFX(x);                                  \
			size_t j = i;                                                \
			for (; j > 0 && key_##SFX(a[j - 1]) > kx; j--)               \
				a[j] = a[j - 1];                                     \
			a[j] = x;                                                    \
		}                                                                    \
	}                                                                            \
	static int orand_##SFX(size_t lo, size_t hi, void *arg)                      \
	{                                                                            \
		struct radix *r = arg;                                               \
		const T *a = r->a;                                                   \
		for (size_t b = lo; b < hi; b++) {                                   \
			uint64_t o = 0, d = ~(uint64_t)0;                            \
			size_t e = (b + 1) * r->bs < r->n ? (b + 1) * r->bs : r->n;  \
			for (size_t i = b * r->bs; i < e; i++) {                     \
				uint64_t k = key_##SFX(a[i]);                        \
				o |= k;                                              \
				d &= k;                                              \
			}                                                            \
			r->orand[2 * b] = o;                                         \
			r->orand[2 * b + 1] = d;                                     \
		}                                                                    \
		return 0;                                                            \
	}                                                                            \
	static int hist_##SFX(size_t lo, size_t hi, void *arg)                       \
	{                                                                            \
		struct radix *r = arg;                                               \
		const T *a = r->a;                                                   \
		unsigned sh = r->shift;                                              \
		for (size_t b = lo; b < hi; b++) {                                   \
			size_t *h = HIST(r, b);                                      \
			memset(h, 0, sizeof *h * RADIX_BUCKETS);                     \
			size_t e = (b + 1) * r->bs < r->n ? (b + 1) * r->bs : r->n;  \
			for (size_t i = b * r->bs; i < e; i++)                       \
				h[(key_##SFX(a[i]) >> sh) & (RADIX_BUCKETS - 1)]++;  \
		}                                                                    \
		return 0;                                                            \
	}                                                                            \
	static int scatter_##SFX(size_t lo, size_t hi, void *arg)                    \
	{                                                                            \
		struct radix *r = arg;                                               \
		const T *a = r->a;                                                   \
		T *t = r->t;                                                         \
		unsigned sh = r->shift;                                              \
		for (size_t b = lo; b < hi; b++) {                                   \
			size_t *off = HIST(r, b);                                    \
			size_t e = (b + 1) * r->bs < r->n ? (b + 1) * r->bs : r->n;  \
			for (size_t i = b * r->bs; i < e; i++) {                     \
				T x = a[i];                                          \
				t[off[(key_##SFX(x) >> sh) & (RADIX_BUCKETS - 1)]++] = x; \
			}                                                            \
		}                                                                    \
		return 0;                                                            \
	}                                                                            \
	/* LSD over the bits below shift, 11 at a time (2048 counters: in   \
	 * L1), src -> dst; each digit counted just before its pass, and a  \
	 * digit that is the same in all keys skipped.  The result ends in  \
	 * dst. */                                                                   \
	static void lsd_##SFX(T *src, T *dst, size_t n, unsigned shift)             \
	{                                                                            \
		if (n <= RADIX_INS) {                                                \
			ins_##SFX(src, n);                                           \
			memcpy(dst, src, n * sizeof(T));                             \
			return;                                                      \
		}                                                                    \
		size_t h[1u << LSD_BITS];                                            \
		T *from = src, *to = dst;                                            \
		for (unsigned sh = 0; sh < shift; sh += LSD_BITS) {                  \
			memset(h, 0, sizeof h);                                      \
			for (size_t i = 0; i < n; i++)                               \
				h[(key_##SFX(from[i]) >> sh) & LSD_MASK]++;          \
			size_t sum = 0;                                              \
			bool trivial = false;                                        \
			for (unsigned v = 0; v <= LSD_MASK; v++) {                   \
				size_t c = h[v];                                     \
				trivial |= c == n;                                   \
				h[v] = sum;                                          \
				sum += c;                                            \
			}                                                            \
			if (trivial)                                                 \
				continue;                                            \
			for (size_t i = 0; i < n; i++) {                             \
				T x = from[i];                                       \
				to[h[(key_##SFX(x) >> sh) & LSD_MASK]++] = x;        \
			}                                                            \
			T *tmp = from;                                               \
			from = to;                                                   \
			to = tmp;                                                    \
		}                                                                    \
		if (from != dst)                                                     \
			memcpy(dst, from, n * sizeof(T));                            \
	}                                                                            \
	static int bucket_##SFX(size_t lo, size_t hi, void *arg)                     \
	{                                                                            \
		struct radix *r = arg;                                               \
		T *a = r->a, *t = r->t;                                              \
		for (size_t v = lo; v < hi; v++) {                                   \
			size_t s = r->bstart[v], e = r->bstart[v + 1];               \
			if (e > s)                                                   \
				lsd_##SFX(t + s, a + s, e - s, r->shift);        \
		}                                                                    \
		return 0;                                                            \
	}                                                                            \
	static int cmp_##SFX(const void *x, const void *y, void *ctx)                \
	{                                                                            \
		(void)ctx;                                                           \
		uint64_t kx = key_##SFX(*(const T *)x), ky = key_##SFX(*(const T *)y); \
		return (kx > ky) - (kx < ky);                                        \
	}                                                                            \
	static void pdq_##SFX(char *a, size_t n, const char *pred, int bad, size_t size, \
			      cmp_fn cmp, void *ctx)                                  \
	{                                                                            \
		(void)size;                                                          \
		(void)cmp;                                                           \
		pdq_body(a, n, pred, bad, sizeof(T), cmp_##SFX, ctx, pdq_##SFX);     \
	}                                                                            \
	static const struct radix_ops ops_##SFX = {orand_##SFX, hist_##SFX,         \
						   scatter_##SFX, bucket_##SFX};     \
	static int radix_##SFX(conc_pool *p, T *a, size_t n)                         \
	{                                                                            \
		if (n < 2)                                                           \
			return 0;                                                    \
		if (n <= CONC_ALGO_SERIAL_SORT) {                                    \
			/* no scratch, no pool: pdqsort, compare inlined */          \
			pdq_##SFX((char *)a, n, NULL, (int)log2_floor(n) + 1,        \
				  sizeof(T), NULL, NULL);                            \
			return 0;                                                    \
		}                                                                    \
		return radix_run(p, a, n, sizeof(T), &ops_##SFX);                    \
	}

typedef int (*rbody_fn)(size_t, size_t, void *);

struct radix_ops {
	rbody_fn orand, hist, scatter, bucket;
};

static int radix_run(conc_pool *p, void *a, size_t n, size_t esize, const struct radix_ops *ops)
{
	struct radix r = {.a = a, .n = n};
	/* Blocks: a function of n only. */
	r.nb = (n + RADIX_BLOCK - 1) / RADIX_BLOCK;
	if (r.nb > RADIX_MAX_BLOCKS)
		r.nb = RADIX_MAX_BLOCKS;
	r.bs = (n + r.nb - 1) / r.nb;
	size_t side = r.nb * (2 * sizeof(uint64_t) + RADIX_BUCKETS * sizeof(size_t));
	if (n > (SIZE_MAX - side - 64) / esize)
		return ENOMEM;
	size_t data_bytes = (n * esize + 63) & ~(size_t)63;
	char *mem = conc__malloc("algo.radix", data_bytes + side);
	if (!mem)
		return ENOMEM;
	r.t = mem;
	r.orand = (uint64_t *)(void *)(mem + data_bytes); /* 64-byte aligned */
	r.hist = (size_t *)(r.orand + 2 * r.nb);

	pfor(p, r.nb, ops->orand, &r);
	uint64_t o = 0, d = ~(uint64_t)0;
	for (size_t b = 0; b < r.nb; b++) {
		o |= r.orand[2 * b];
		d &= r.orand[2 * b + 1];
	}
	uint64_t vary = o ^ d;
	if (vary) {
		unsigned hb = 64 - (unsigned)__builtin_clzll(vary);
		r.shift = hb > RADIX_BITS ? hb - RADIX_BITS : 0;
		pfor(p, r.nb, ops->hist, &r);
		/* Scatter offsets: bucket by bucket, block by block, so each
		 * block's keys keep their order (stable). */
		size_t sum = 0;
		for (unsigned v = 0; v < RADIX_BUCKETS; v++) {
			r.bstart[v] = sum;
			for (size_t b = 0; b < r.nb; b++) {
				size_t *h = HIST(&r, b);
				size_t c = h[v];
				h[v] = sum;
				sum += c;
			}
		}
		r.bstart[RADIX_BUCKETS] = sum;
		pfor(p, r.nb, ops->scatter, &r);
		pfor(p, RADIX_BUCKETS, ops->bucket, &r);
	} /* else every key is the same: sorted already */
	free(mem);
	return 0;
}

DEFINE_RADIX(u64, ru64, 8, RK_U64)
DEFINE_RADIX(i64, ru64, 8, RK_I64)
DEFINE_RADIX(f64, ru64, 8, RK_F64)
DEFINE_RADIX(u32, ru32, 4, RK_U32)

int conc_parallel_sort_u64(conc_pool *p, uint64_t *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	return radix_u64(p, (ru64 *)a, n);
}

int conc_parallel_sort_u32(conc_pool *p, uint32_t *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	return radix_u32(p, (ru32 *)a, n);
}

int conc_parallel_sort_i64(conc_pool *p, int64_t *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	return radix_i64(p, (ru64 *)a, n);
}

int conc_parallel_sort_double(conc_pool *p, double *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	return radix_f64(p, (ru64 *)(void *)a, n);
}

/* ---- scan ------------------------------------------------------------------ */

/*
 * The array is cut into chunks of 3 blocks of SCAN_BLOCK(size) elements
 * (the last chunk: its remaining m elements cut into 3 by m / 3, or run
 * serially below 3 * 1024).  With C the carry into a chunk (the last
 * element of the previous chunk, after the scan; none for the first):
 *   phase 1, by conc_join: block 0 scanned with C (acc = C, then for each
 *     element acc = acc o x, stored); block 1 folded into T1
 *   then C1 = the last element of block 0 (now scanned), C2 = C1 o T1;
 *   phase 2, by conc_join: block 1 scanned with C1, block 2 with C2.
 * The grouping is a function of n and size only.  Block 0 and the last
 * block need no separate fold, so a chunk costs 4 block-passes of work,
 * 2 on each of two threads: 1.5x the serial speed at best with two
 * threads, whatever the pool's size (the price of a grouping that does
 * not depend on it).  A chunk is small enough (~6 MiB) to stay in the
 * shared cache between its two phases, so the array is read from memory
 * about once, as by the serial loop.
 */
#define SCAN_BLOCK_BYTES (2048u * 1024u)
#define SCAN_ACC 256u /* elements up to this size: accumulators on the stack */

typedef void (*op_fn)(void *acc, const void *x, void *ctx);

struct scan;
typedef void (*scan_fn)(const struct scan *s, char *x, size_t n, const char *carry, char *acc);
typedef void (*fold_fn)(const struct scan *s, const char *x, size_t n, char *acc);

struct scan {
	op_fn op;
	void *ctx;
	size_t size;
	scan_fn scan; /* scan_block, or a typed one (op inlined) */
	fold_fn fold;
};

struct sjob {
	const struct scan *s;
	char *x;
	size_t n;
	const char *carry; /* NULL: the block starts the array */
	char *acc;         /* size bytes of scratch (aligned) */
};

/* acc = carry (or x[0]); then acc = acc o x[i], x[i] = acc. */
static void scan_block(const struct scan *s, char *x, size_t n, const char *carry, char *acc)
{
	size_t size = s->size;
	op_fn op = s->op;
	void *ctx = s->ctx;
	size_t i = 0;
	if (!carry) {
		if (n == 0)
			return;
		carry = x;
		i = 1;
	}
	memcpy(acc, carry, size);
	if (size == 8) {
		for (; i < n; i++) {
			op(acc, x + 8 * i, ctx);
			memcpy(x + 8 * i, acc, 8);
		}
	} else {
		for (; i < n; i++) {
			op(acc, EL(x, i), ctx);
			memcpy(EL(x, i), acc, size);
		}
	}
}

/* acc = x[0] o x[1] o ... (n >= 1) */
static void fold_block(const struct scan *s, const char *x, size_t n, char *acc)
{
	size_t size = s->size;
	memcpy(acc, x, size);
	for (size_t i = 1; i < n; i++)
		s->op(acc, EL(x, i), s->ctx);
}

/* The typed scans: the same grouping as scan_block and fold_block with
 * op acc += x, the addition inlined.  u64 wraps (mod 2^64). */
#define DEFINE_SCAN_ADD(SFX, T)                                                      \
	static void scan_##SFX(const struct scan *s, char *x, size_t n, const char *carry, \
			       char *acc)                                             \
	{                                                                            \
		(void)s;                                                             \
		(void)acc;                                                           \
		T *v = (T *)(void *)x;                                               \
		size_t i = 0;                                                        \
		T a;                                                                 \
		if (!carry) {                                                        \
			if (n == 0)                                                  \
				return;                                              \
			a = v[0];                                                    \
			i = 1;                                                       \
		} else {                                                             \
			memcpy(&a, carry, sizeof a);                                 \
		}                                                                    \
		for (; i < n; i++) {                                                 \
			a += v[i];                                                   \
			v[i] = a;                                                    \
		}                                                                    \
	}                                                                            \
	static void fold_##SFX(const struct scan *s, const char *x, size_t n, char *acc) \
	{                                                                            \
		(void)s;                                                             \
		const T *v = (const T *)(const void *)x;                             \
		T a = v[0];                                                          \
		for (size_t i = 1; i < n; i++)                                       \
			a += v[i];                                                   \
		memcpy(acc, &a, sizeof a);                                           \
	}                                                                            \
	static void op_##SFX(void *acc, const void *x, void *ctx)                    \
	{                                                                            \
		(void)ctx;                                                           \
		T a, b;                                                              \
		memcpy(&a, acc, sizeof a);                                           \
		memcpy(&b, x, sizeof b);                                             \
		a += b;                                                              \
		memcpy(acc, &a, sizeof a);                                           \
	}
DEFINE_SCAN_ADD(u64, uint64_t)
DEFINE_SCAN_ADD(f64, double)

static void scan_job(void *arg)
{
	struct sjob *j = arg;
	j->s->scan(j->s, j->x, j->n, j->carry, j->acc);
}

static void fold_job(void *arg)
{
	struct sjob *j = arg;
	j->s->fold(j->s, j->x, j->n, j->acc);
}

/* Scan one chunk of n (>= 3) elements in 3 blocks, with carry (or NULL).
 * scratch: 3 accumulators of size bytes (aligned). */
static void scan_chunk(conc_pool *p, const struct scan *s, char *x, size_t n, size_t bs,
		       const char *carry, char *t1, char *c2, char *acc0, char *acc1)
{
	size_t size = s->size;
	size_t n2 = n - 2 * bs;
	struct sjob b0 = {s, x, bs, carry, acc0};
	struct sjob b1 = {s, EL(x, bs), bs, NULL, t1};
	if (conc_join(p, scan_job, &b0, fold_job, &b1)) {
		scan_job(&b0);
		fold_job(&b1);
	}
	const char *c1 = EL(x, bs - 1);
	memcpy(c2, c1, size);
	s->op(c2, t1, s->ctx);
	struct sjob s1 = {s, EL(x, bs), bs, c1, acc0};
	struct sjob s2 = {s, EL(x, 2 * bs), n2, c2, acc1};
	if (conc_join(p, scan_job, &s1, scan_job, &s2)) {
		scan_job(&s1);
		scan_job(&s2);
	}
}

static int scan_run(conc_pool *p, struct scan *sp, void *base, size_t n)
{
	const struct scan s = *sp;
	size_t size = s.size;
	/* Four accumulators (t1, c2, acc0, acc1), each rounded up to
	 * max_align_t: on the stack up to SCAN_ACC bytes, else allocated. */
	size_t stride = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	alignas(max_align_t) char stack[4 * SCAN_ACC];
	char *mem = NULL, *acc = stack;
	if (size > SCAN_ACC) {
		if (stride > SIZE_MAX / 4)
			return ENOMEM;
		mem = conc__aligned_alloc("algo.scan", alignof(max_align_t), 4 * stride);
		if (!mem)
			return ENOMEM;
		acc = mem;
	} else {
		stride = SCAN_ACC;
	}
	char *x = base;
	if (n <= CONC_ALGO_SERIAL_SCAN) {
		s.scan(&s, x, n, NULL, acc); /* pool untouched */
	} else {
		size_t bs = SCAN_BLOCK_BYTES / size;
		if (bs < 1024)
			bs = 1024;
		const char *carry = NULL;
		size_t i = 0;
		while (i < n) {
			size_t left = n - i, m, b;
			if (left >= 3 * bs) {
				m = 3 * bs;
				b = bs;
			} else {
				m = left;
				b = left / 3;
			}
			if (b < 1024) {
				/* a short last chunk: serially */
				s.scan(&s, EL(x, i), m, carry, acc);
			} else {
				scan_chunk(p, &s, EL(x, i), m, b, carry, acc, acc + stride,
					   acc + 2 * stride, acc + 3 * stride);
			}
			i += m;
			carry = EL(x, i - 1);
		}
	}
	free(mem);
	return 0;
}

int conc_parallel_scan(conc_pool *p, void *base, size_t n, size_t size,
		       void (*op)(void *acc, const void *x, void *ctx), void *ctx)
{
	if ((!base && n > 0) || !op || size == 0 || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n < 2)
		return 0;
	struct scan s = {op, ctx, size, scan_block, fold_block};
	return scan_run(p, &s, base, n);
}

int conc_parallel_scan_u64(conc_pool *p, uint64_t *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n < 2)
		return 0;
	struct scan s = {op_u64, NULL, sizeof *a, scan_u64, fold_u64};
	return scan_run(p, &s, a, n);
}

int conc_parallel_scan_double(conc_pool *p, double *a, size_t n)
{
	if ((!a && n > 0) || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n < 2)
		return 0;
	struct scan s = {op_f64, NULL, sizeof *a, scan_f64, fold_f64};
	return scan_run(p, &s, a, n);
}

/* ---- filter ----------------------------------------------------------------- */

#define FILTER_BLOCK 65536u /* elements per block: a multiple of 64 */

struct filter {
	const char *src;
	char *dst;
	size_t n, size;
	bool (*keep)(const void *, void *);
	void *ctx;
	uint64_t *bits;
	size_t *count; /* per block: kept, then the block's first output index */
};

static int filter_mark(size_t lo, size_t hi, void *arg)
{
	struct filter *f = arg;
	size_t size = f->size;
	for (size_t b = lo; b < hi; b++) {
		size_t s = b * FILTER_BLOCK;
		size_t e = s + FILTER_BLOCK < f->n ? s + FILTER_BLOCK : f->n;
		size_t c = 0;
		for (size_t w = s; w < e; w += 64) {
			uint64_t word = 0;
			size_t we = w + 64 < e ? w + 64 : e;
			for (size_t i = w; i < we; i++)
				if (f->keep(EL(f->src, i), f->ctx))
					word |= UINT64_C(1) << (i - w);
			f->bits[w / 64] = word;
			c += (size_t)__builtin_popcountll(word);
		}
		f->count[b] = c;
	}
	return 0;
}

static int filter_copy(size_t lo, size_t hi, void *arg)
{
	struct filter *f = arg;
	size_t size = f->size;
	for (size_t b = lo; b < hi; b++) {
		size_t s = b * FILTER_BLOCK;
		size_t e = s + FILTER_BLOCK < f->n ? s + FILTER_BLOCK : f->n;
		char *out = EL(f->dst, f->count[b]);
		for (size_t w = s; w < e; w += 64) {
			uint64_t word = f->bits[w / 64];
			while (word) {
				unsigned k = (unsigned)__builtin_ctzll(word);
				word &= word - 1;
				memcpy(out, EL(f->src, w + k), size);
				out += size;
			}
		}
	}
	return 0;
}

int conc_parallel_filter(conc_pool *p, const void *src, size_t n, size_t size,
			 bool (*keep)(const void *x, void *ctx), void *ctx,
			 void *dst, size_t *kept)
{
	if (((!src || !dst) && n > 0) || !keep || !kept || size == 0 ||
	    (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (n <= CONC_ALGO_SERIAL_SCAN) {
		/* serially, keep once per element, straight into dst */
		const char *s = src;
		char *d = dst;
		size_t c = 0;
		for (size_t i = 0; i < n; i++)
			if (keep(EL(s, i), ctx))
				memcpy(EL(d, c++), EL(s, i), size);
		*kept = c;
		return 0;
	}
	size_t nb = (n + FILTER_BLOCK - 1) / FILTER_BLOCK;
	size_t words = (n + 63) / 64;
	uint64_t *bits = conc__malloc("algo.filter", words * sizeof *bits + nb * sizeof(size_t));
	if (!bits)
		return ENOMEM;
	struct filter f = {src, dst, n, size, keep, ctx, bits, (size_t *)(bits + words)};
	pfor(p, nb, filter_mark, &f);
	size_t sum = 0;
	for (size_t b = 0; b < nb; b++) {
		size_t c = f.count[b];
		f.count[b] = sum;
		sum += c;
	}
	pfor(p, nb, filter_copy, &f);
	free(bits);
	*kept = sum;
	return 0;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
