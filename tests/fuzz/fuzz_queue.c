/*
 * fuzz_queue.c - libFuzzer target: conc/queue.h against a reference model
 * (fuzz_container.h has the driver and the input encoding).
 */
#include "conc/queue.h"

#include "fuzz_container.h"

static const fz_ops FZ = {
	.ops = &tl_queue,
	.bulk_max = 1024,
};
