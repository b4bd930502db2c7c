/*
 * fuzz_stack.c - libFuzzer target: conc/stack.h against a reference model
 * (fuzz_container.h has the driver and the input encoding).
 */
#include "conc/stack.h"

#include "fuzz_container.h"

static const fz_ops FZ = {
	.ops = &tl_stack,
	.bulk_max = 256,
};
