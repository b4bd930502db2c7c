/*
 * version.c - conc_version, conc_version_number: the library's version at
 * run time (the numbers of the headers it was built with).
 */
#include "conc/version.h"

const char *conc_version(void)
{
	return CONC_VERSION_STRING;
}

unsigned conc_version_number(void)
{
	return CONC_VERSION_NUMBER;
}
