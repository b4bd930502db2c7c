/*
 * arch.h - everything that differs between x86-64 and AArch64, in one place.
 *
 * The rest of libconc is portable C11 plus Linux system calls; inline asm
 * appears here and nowhere else.
 */
#ifndef CONC_INTERNAL_ARCH_H
#define CONC_INTERNAL_ARCH_H

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "libconc supports x86-64 and AArch64 Linux"
#endif

/*
 * CONC_CACHE_LINE is the hardware line (64 bytes on both; a test checks it
 * against sysconf).  CONC_PAD is the distance that keeps two hot objects from
 * interfering: 128 on both, because x86's adjacent-line prefetcher pulls lines
 * in pairs and many AArch64 cores (Neoverse, Apple) have 128-byte lines or
 * pair-prefetch as well.  crossbeam's CachePadded uses the same numbers.
 */
#define CONC_CACHE_LINE 64
#define CONC_PAD 128

/* Whether every CPU of the architecture has CONC_CACHE_LINE-byte lines
 * (x86-64); AArch64 parts with 128-byte lines exist (CONC_PAD covers them). */
#if defined(__x86_64__)
#define CONC_CACHE_LINE_EXACT 1
#else
#define CONC_CACHE_LINE_EXACT 0
#endif

/* One spin-wait hint: lets the sibling hyperthread run, saves power. */
static inline void conc__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Branch hints, for the fast paths only. */
#define conc__likely(x) __builtin_expect(!!(x), 1)
#define conc__unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Compiler-only barrier: forbids the compiler from moving memory accesses
 * across it, emits no instruction.  The epoch fast path pairs it with a
 * process-wide membarrier() on the slow side.
 */
#define conc__compiler_barrier() __asm__ __volatile__("" ::: "memory")

/*
 * The TLS model of libconc's own thread-locals (the node cache, the stack's
 * elimination state, the pool's worker, the epoch fast path's alias).
 * libconc.a keeps initial-exec: it is linked into executables, where the
 * linker relaxes the model to a plain %fs-relative access anyway, and
 * saying so to the compiler keeps retire's fast path a leaf (no
 * __tls_get_addr call it has to save registers around).  libconc.so's own
 * objects are compiled with -DCONC_TLS_DYNAMIC (meson.build), which drops
 * the attribute: the dynamic model, through TLS descriptors where the
 * compiler has them (-mtls-dialect=gnu2, x86-64 gcc), so that libconc.so is
 * not a STATIC_TLS module and dlopen() can load it, directly or as a
 * plugin's dependency.  libconc.a linked into a shared object that is then
 * dlopen()ed still needs glibc's spare static TLS: use libconc.so there.
 */
#ifdef CONC_TLS_DYNAMIC
#define CONC__TLS_IE
#else
#define CONC__TLS_IE __attribute__((tls_model("initial-exec")))
#endif

#endif
