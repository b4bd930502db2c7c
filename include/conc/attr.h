/*
 * conc/attr.h - the attribute macros of libconc's declarations; each
 * expands to nothing where the compiler lacks the attribute.
 *
 *   CONC_NODISCARD int conc_queue_create(conc_queue **out);
 *   if (conc_queue_try_pop(q, &item)) use(item);   // the result must be used
 *
 * CONC_NODISCARD marks the calls whose result must be looked at: the
 * create functions (on failure the object pointer is not set) and the
 * pops (on failure *item is not set).  Ignoring such a result is a
 * compiler warning.  Calls whose failure only leaves something with the
 * caller - a push (the item), conc_pool_execute (the task),
 * conc_epoch_defer - are not marked: ignoring their result is often a
 * deliberate choice, and with gcc's warn_unused_result not even a (void)
 * cast silences the warning (C23's and C++17's [[nodiscard]], used where
 * the language has it, and clang's attribute accept the cast).
 *
 * CONC_NONNULL(n, ...) declares that parameters n, ... must not be NULL:
 * a caller that passes a NULL the compiler can see gets -Wnonnull.  No
 * libconc declaration uses it, on purpose: every pointer parameter of
 * libconc is either checked (a NULL object or required pointer is EINVAL,
 * or does nothing, as conc/conc.h states) or may be NULL by contract.  On
 * a checked parameter, nonnull would turn that documented EINVAL into
 * undefined behaviour: the compiler may then delete the check inside the
 * library (-fdelete-null-pointer-checks, which the single-header build
 * would compile into the program itself) and the caller's own tests of the
 * pointer after the call.  The macro is here for declarations that do not
 * check, in programs built on libconc.
 */
#ifndef CONC_ATTR_H
#define CONC_ATTR_H

#if defined(__has_attribute)
#define CONC__HAS_ATTRIBUTE(x) __has_attribute(x)
#else
#define CONC__HAS_ATTRIBUTE(x) 0
#endif

#if defined(__cplusplus) && __cplusplus >= 201703L
#define CONC__NODISCARD [[nodiscard]]
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ > 201710L && \
	defined(__has_c_attribute)
#if __has_c_attribute(nodiscard)
#define CONC__NODISCARD [[nodiscard]]
#endif
#endif
#if !defined(CONC__NODISCARD) && CONC__HAS_ATTRIBUTE(warn_unused_result)
#define CONC__NODISCARD __attribute__((__warn_unused_result__))
#endif
#ifndef CONC__NODISCARD
#define CONC__NODISCARD
#endif

#if CONC__HAS_ATTRIBUTE(nonnull)
#define CONC__NONNULL(...) __attribute__((__nonnull__(__VA_ARGS__)))
#else
#define CONC__NONNULL(...)
#endif

/*
 * CONC_NODISCARD - before a declaration: the caller must use the result
 * ([[nodiscard]] in C23 and C++17, else warn_unused_result, else nothing).
 */
#define CONC_NODISCARD CONC__NODISCARD

/*
 * CONC_NONNULL - after a declaration's parameter list: the listed
 * parameters (1-based) must not be NULL (nonnull, else nothing).  Not used
 * on libconc's own declarations: conc_attr explains why.
 */
#define CONC_NONNULL(...) CONC__NONNULL(__VA_ARGS__)

#endif
