/*
 * stress_stack.c - the stack under 16 threads at producer:consumer ratios
 * 1:15, 8:8 and 15:1: nothing lost, nothing duplicated (a stack promises
 * no order across threads; the run and its checks are in
 * stress_container.h).
 */
#include "conc/stack.h"

#include "stress_container.h"

static const tl_container *const SC = &tl_stack;

int main(void)
{
	return sc_main("stack-stress");
}
