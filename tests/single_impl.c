/*
 * single_impl.c - the one file of a program that holds libconc's
 * implementation (CONC_IMPLEMENTATION), built beside single_example.c.
 *
 * It also declares, at file scope and after the implementation, names that
 * libconc's sources use for their own static functions, variables, types
 * and macros: the amalgamation must keep its file-local names to itself.
 */
#define CONC_IMPLEMENTATION
#include "conc_single.h"

static int init;             /* src/epoch/epoch.c has a static init() */
typedef int rec;             /* and a typedef rec */
struct worker {              /* src/scope/scope.c has a struct worker */
	rec id;
};
static struct worker current = {0}; /* and a static current */
enum { GRACE = 1, MAX_IDLE = 2 };   /* and these are macros there */

int single_impl_names(void);
int single_impl_names(void)
{
	return init + current.id + GRACE + MAX_IDLE - 3;
}
