/*
 * stress_queue.c - the queue under 16 threads at producer:consumer ratios
 * 1:15, 8:8 and 15:1: nothing lost, nothing duplicated, per-producer FIFO
 * (the run and its checks are in stress_container.h).
 */
#include "conc/queue.h"

#include "stress_container.h"

static const tl_container *const SC = &tl_queue;

int main(void)
{
	return sc_main("queue-stress");
}
