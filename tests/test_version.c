/*
 * test_version.c - conc/version.h against meson.build's project version
 * (CONC_PROJECT_VERSION, passed by tests/meson.build), and the run-time
 * calls against the headers.  Fails when someone bumps one and not the
 * other.
 */
#include <conc/conc.h>
#include <stdio.h>
#include <string.h>

#if !CONC_CHECK_VERSION(0, 1, 0) || CONC_CHECK_VERSION(CONC_VERSION_MAJOR, CONC_VERSION_MINOR, CONC_VERSION_PATCH + 1)
#error "CONC_CHECK_VERSION is wrong"
#endif

int main(void)
{
	char built[64];
	int fail = 0;
	snprintf(built, sizeof built, "%d.%d.%d", CONC_VERSION_MAJOR,
		 CONC_VERSION_MINOR, CONC_VERSION_PATCH);
	if (strcmp(CONC_VERSION_STRING, CONC_PROJECT_VERSION) != 0) {
		printf("FAIL: conc/version.h says %s, meson.build %s\n",
		       CONC_VERSION_STRING, CONC_PROJECT_VERSION);
		fail = 1;
	}
	if (strcmp(built, CONC_VERSION_STRING) != 0) {
		printf("FAIL: CONC_VERSION_MAJOR/MINOR/PATCH make %s, CONC_VERSION_STRING is %s\n",
		       built, CONC_VERSION_STRING);
		fail = 1;
	}
	if (strcmp(conc_version(), CONC_VERSION_STRING) != 0 ||
	    conc_version_number() != CONC_VERSION_NUMBER) {
		printf("FAIL: the library reports %s (%#x), the headers %s (%#x)\n",
		       conc_version(), conc_version_number(), CONC_VERSION_STRING,
		       CONC_VERSION_NUMBER);
		fail = 1;
	}
	if (!CONC_CHECK_VERSION(0, 0, 9) || CONC_CHECK_VERSION(99, 0, 0)) {
		printf("FAIL: CONC_CHECK_VERSION\n");
		fail = 1;
	}
	printf("version: headers %s, library %s, meson %s\n", CONC_VERSION_STRING,
	       conc_version(), CONC_PROJECT_VERSION);
	return fail;
}
