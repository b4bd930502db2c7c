/*
 * conc/conc.h - the whole of libconc in one include.
 */
#ifndef CONC_CONC_H
#define CONC_CONC_H

#include "conc/cpu.h"
#include "conc/epoch.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "conc/pool.h"
#include "conc/scope.h"
#include "conc/parallel.h"

#endif
