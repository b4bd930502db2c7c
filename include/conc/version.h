/*
 * conc/version.h - which libconc these headers are, and which library the
 * program runs with.
 *
 * The numbers below are the project's version (meson.build's project());
 * the version test (suite headers) fails when they differ.  Releases are
 * tagged vMAJOR.MINOR.PATCH (NEWS.md).
 *
 *   #if CONC_CHECK_VERSION(0, 2, 0)   - the headers are 0.2.0 or later
 *   conc_version()                    - "0.1.0": the library linked at run time
 */
#ifndef CONC_VERSION_H
#define CONC_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* CONC_VERSION_MAJOR - the major version of these headers (0 while the
 * API may still change from one minor version to the next). */
#define CONC_VERSION_MAJOR 0

/* CONC_VERSION_MINOR - the minor version of these headers. */
#define CONC_VERSION_MINOR 1

/* CONC_VERSION_PATCH - the patch level of these headers. */
#define CONC_VERSION_PATCH 0

/* CONC_VERSION_STRING - the headers' version as "MAJOR.MINOR.PATCH". */
#define CONC_VERSION_STRING "0.1.0"

/* CONC_VERSION_ENCODE - one unsigned number that orders versions, usable
 * in #if: MAJOR << 16 | MINOR << 8 | PATCH (minor and patch stay below
 * 256). */
#define CONC_VERSION_ENCODE(major, minor, patch) \
	((major) * 65536u + (minor) * 256u + (patch) * 1u)

/* CONC_VERSION_NUMBER - the headers' version, CONC_VERSION_ENCODE of it;
 * usable in #if. */
#define CONC_VERSION_NUMBER \
	CONC_VERSION_ENCODE(CONC_VERSION_MAJOR, CONC_VERSION_MINOR, CONC_VERSION_PATCH)

/* CONC_CHECK_VERSION - true when the headers are at least major.minor.patch;
 * usable in #if. */
#define CONC_CHECK_VERSION(major, minor, patch) \
	(CONC_VERSION_NUMBER >= CONC_VERSION_ENCODE(major, minor, patch))

/*
 * conc_version - the version of the library the program runs with, as
 * "MAJOR.MINOR.PATCH" (a shared libconc may be newer than the headers the
 * program was built with).
 *
 * Thread safety: any thread.  Progress: wait-free.
 * Returns: a static string; never NULL.
 */
const char *conc_version(void);

/*
 * conc_version_number - the same as a number, CONC_VERSION_ENCODE of it:
 * compare with CONC_VERSION_NUMBER (the headers').
 *
 * Thread safety: any thread.  Progress: wait-free.
 */
unsigned conc_version_number(void);

#ifdef __cplusplus
}
#endif

#endif
