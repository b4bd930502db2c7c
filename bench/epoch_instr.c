/*
 * epoch_instr.c - instructions per retire, libconc against ck_epoch_call,
 * counted by callgrind (times nothing, so it holds on a loaded machine).
 *
 *   epoch_instr conc|ck N [barrier]
 *
 * Retires N preallocated nodes on one thread inside measured(), the only
 * function callgrind counts: conc_epoch_retire on the global domain, or
 * ck_epoch_call with ck_epoch_poll every 64 calls (bench_epoch's ck row).
 * With `barrier` the final drain (conc_epoch_barrier, ck_epoch_barrier)
 * is counted too; without, it runs outside (as tests/instr_driver.c).  The
 * callback count is checked either way (exit 1 if short).  Per op:
 *
 *   for n in 2000 12000; do valgrind --tool=callgrind \
 *     --callgrind-out-file=cg.$n --toggle-collect=measured \
 *     build/release/bench/epoch_instr conc $n; done
 *   (Ir(12000) - Ir(2000)) / 10000, Ir from each file's "summary:" line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_epoch.h>

#include "conc/epoch.h"

static unsigned long reclaimed;
static ck_epoch_t ck_global;
static ck_epoch_record_t ck_rec;

static void conc_count(conc_epoch_node *n)
{
	(void)n;
	reclaimed++;
}

static void ck_count(ck_epoch_entry_t *e)
{
	(void)e;
	reclaimed++;
}

__attribute__((noinline)) void measured(int ck, void *nodes, unsigned long n, int drain);
__attribute__((noinline)) void measured(int ck, void *nodes, unsigned long n, int drain)
{
	if (ck) {
		ck_epoch_entry_t *e = nodes;
		for (unsigned long i = 0; i < n; i++) {
			ck_epoch_call(&ck_rec, &e[i], ck_count);
			if ((i & 63) == 63)
				ck_epoch_poll(&ck_rec);
		}
		if (drain)
			ck_epoch_barrier(&ck_rec);
	} else {
		conc_epoch_node *c = nodes;
		for (unsigned long i = 0; i < n; i++)
			conc_epoch_retire(conc_epoch_global(), &c[i], conc_count);
		if (drain)
			conc_epoch_barrier(conc_epoch_global());
	}
	__asm__ __volatile__("" ::: "memory");
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "conc") && strcmp(argv[1], "ck")) || atol(argv[2]) <= 0) {
		fprintf(stderr, "usage: %s conc|ck N [barrier]\n", argv[0]);
		return 2;
	}
	int ck = !strcmp(argv[1], "ck");
	int drain = argc > 3 && !strcmp(argv[3], "barrier");
	unsigned long n = (unsigned long)atol(argv[2]);
	void *nodes = calloc(n, ck ? sizeof(ck_epoch_entry_t) : sizeof(conc_epoch_node));
	if (!nodes)
		return 1;
	if (ck) {
		ck_epoch_init(&ck_global);
		ck_epoch_register(&ck_global, &ck_rec, NULL);
	} else {
		conc_epoch_register(conc_epoch_global());
	}
	measured(ck, nodes, n, drain);
	if (ck)
		ck_epoch_barrier(&ck_rec);
	else
		conc_epoch_barrier(conc_epoch_global());
	free(nodes);
	if (reclaimed != n) {
		fprintf(stderr, "%s: %lu of %lu callbacks ran\n", argv[0], reclaimed, n);
		return 1;
	}
	return 0;
}
