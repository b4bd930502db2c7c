/*
 * atomics.h (internal) - the thin atomics layer under the algorithm cores
 * (src/<module>/alg_*.h).
 *
 * Why.  The cores - the CAS loops, the MS link and tail swing, the slot
 * claims, the epoch pin and advance - are written once, against these
 * macros, so that the same text compiles into libconc (here, <stdatomic.h>
 * and the GNU __atomic builtins: the generated code is what the direct
 * calls gave) and into the Relacy model checker's harnesses
 * (tests/models/relacy_*.cc define CONC_RELACY and map them to rl::atomic,
 * rl::var and Relacy's fences).  A model then checks the library's code,
 * not a copy of it.  The cores must therefore be valid C11 and C++.
 *
 *   CONC_ATOMIC(T)      an atomic object (_Atomic(T) / rl::atomic<T>)
 *   CONC_RAW_ATOMIC(T)  a plain T accessed only with conc_raw_* (epoch's
 *                       record words, which a public C++ header also
 *                       reads) / rl::atomic<T>
 *   CONC_PLAIN(T)       a non-atomic field a core touches (T / rl::var<T>),
 *                       read and written as conc_v(x), so that Relacy sees
 *                       data races and accesses to freed memory on it
 *   conc_ld, conc_st, conc_xchg, conc_cas (strong), conc_faa, conc_fence
 *                       (also every fence outside the cores: it keeps gcc's
 *                       TSan builds free of -Wtsan, see below);
 *   conc_raw_ld, conc_raw_st, conc_raw_cas for CONC_RAW_ATOMIC objects;
 *   CONC_MO_* the memory orders, CONC_MO_T their type;
 *   CONC_ALG_INLINE, how the cores' functions are declared.
 */
#ifndef CONC_INTERNAL_ATOMICS_H
#define CONC_INTERNAL_ATOMICS_H

#ifdef CONC_RELACY
/* The Relacy harness includes <relacy/relacy.hpp> first. */
#define CONC_ATOMIC(T) rl::atomic<T>
#define CONC_RAW_ATOMIC(T) rl::atomic<T>
#define CONC_PLAIN(T) rl::var<T>
#define conc_v(x) ((x)($))
#define CONC_MO_T rl::memory_order
#define CONC_MO_RELAXED rl::mo_relaxed
#define CONC_MO_ACQUIRE rl::mo_acquire
#define CONC_MO_RELEASE rl::mo_release
#define CONC_MO_ACQ_REL rl::mo_acq_rel
#define CONC_MO_SEQ_CST rl::mo_seq_cst
#define conc_ld(p, mo) ((*(p))($).load(mo))
#define conc_st(p, v, mo) ((*(p))($).store((v), (mo)))
#define conc_xchg(p, v, mo) ((*(p))($).exchange((v), (mo)))
#define conc_cas(p, expp, v, mo, fmo) ((*(p))($).compare_exchange_strong(*(expp), (v), (mo), (fmo)))
#define conc_faa(p, v, mo) ((*(p))($).fetch_add((v), (mo)))
#define conc_for(p, v, mo) ((*(p))($).fetch_or((v), (mo)))
#define conc_fence(mo) rl::atomic_thread_fence((mo), $)
#define conc_raw_ld conc_ld
#define conc_raw_st conc_st
#define conc_raw_cas conc_cas
/* What base/arch.h and base/chaos.h give the C build, as no-ops: Relacy
 * explores the schedules itself. */
#define conc__compiler_barrier() ((void)0)
#define conc__cpu_relax() ((void)0)
#define conc__chaos_point() ((void)0)
#define conc__likely(x) (x)
#define conc__unlikely(x) (x)
#define CONC_ALG_INLINE static inline
#else
#include <stdatomic.h>
#include <stdbool.h>

#include "base/arch.h"
#include "base/chaos.h"

#define CONC_ATOMIC(T) _Atomic(T)
#define CONC_RAW_ATOMIC(T) T
#define CONC_PLAIN(T) T
#define conc_v(x) (x)
#define CONC_MO_T int /* memory_order_x == __ATOMIC_X in gcc and clang */
#define CONC_MO_RELAXED memory_order_relaxed
#define CONC_MO_ACQUIRE memory_order_acquire
#define CONC_MO_RELEASE memory_order_release
#define CONC_MO_ACQ_REL memory_order_acq_rel
#define CONC_MO_SEQ_CST memory_order_seq_cst
#define conc_ld(p, mo) atomic_load_explicit((p), (mo))
#define conc_st(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define conc_xchg(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
#define conc_cas(p, expp, v, mo, fmo) \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), (mo), (fmo))
#define conc_faa(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define conc_for(p, v, mo) atomic_fetch_or_explicit((p), (v), (mo))
/* gcc 11 and later warn (-Wtsan) that ThreadSanitizer does not model
 * atomic_thread_fence.  The fences stay: they are the code users run, and
 * none of them is the only edge that publishes plain data - each such
 * handover is also an atomic release/acquire pair, which TSan sees; the
 * fences order atomics against atomics (the store-buffering arguments),
 * which TSan does not check.  The warning is silenced here, around the
 * fence alone, rather than by -Wno-tsan on the command line, so that a TSan
 * build of dist/conc_single.h is clean under the user's own -Werror.  The
 * pragmas go around a function, not inside the macro: gcc 12 reports the
 * fence after inlining, and a _Pragma pair in the macro's expansion does
 * not silence that report, while a pair around the fence's definition
 * does.  always_inline keeps the fence where the caller wrote it.  clang's
 * TSan has no such warning. */
#if defined(__SANITIZE_THREAD__) && defined(__GNUC__) && !defined(__clang__) && \
	__GNUC__ >= 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
static inline __attribute__((always_inline)) void conc__tsan_fence(memory_order mo)
{
	atomic_thread_fence(mo);
}
#pragma GCC diagnostic pop
#define conc_fence(mo) conc__tsan_fence(mo)
#else
#define conc_fence(mo) atomic_thread_fence(mo)
#endif
#define conc_raw_ld(p, mo) __atomic_load_n((p), (mo))
#define conc_raw_st(p, v, mo) __atomic_store_n((p), (v), (mo))
#define conc_raw_cas(p, expp, v, mo, fmo) \
	__atomic_compare_exchange_n((p), (expp), (v), false, (mo), (fmo))
/* always_inline: inlined early, the cores compile to what the code they
 * replaced compiled to (plain inline was inlined later and laid out the
 * stack's pop differently: +2% instructions in the instr guard). */
#define CONC_ALG_INLINE static inline __attribute__((always_inline))
#endif

#endif
