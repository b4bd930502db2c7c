/*
 * conc/conc.h - the whole of libconc in one include.
 *
 * Chaos mode: run a program's tests with CONC_CHAOS=1 in the environment
 * and libconc shakes its schedules, reclaims eagerly and poisons the memory
 * it frees, so that the program's own use-after-free and ordering bugs
 * surface (see conc_chaos_enabled in conc/cpu.h).
 */
#ifndef CONC_CONC_H
#define CONC_CONC_H

#include "conc/version.h"
#include "conc/cpu.h"
#include "conc/epoch.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "conc/pool.h"
#include "conc/scope.h"
#include "conc/parallel.h"

#endif
