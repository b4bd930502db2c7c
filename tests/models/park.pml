/*
 * park.pml - a Promela model of libconc's parking protocol
 * (src/base/park.h, src/base/park.c; the waiter side as
 * src/base/waitpop.h runs it), checked with spin.
 *
 * A MODEL, NOT THE CODE: a hand-written abstraction, checked for every
 * interleaving under sequential consistency - which is what park.h's
 * seq_cst RMW + fence (waiter) and seq_cst publishing write + seq_cst load
 * of waiters (notifier) buy: the store-buffering argument in park.h puts
 * these accesses in one total order.  The futex is modelled as the kernel
 * runs it: FUTEX_WAIT compares the word with the key and sleeps in one
 * atomic step; FUTEX_WAKE wakes one sleeper.
 *
 * Processes: NW consumers, each wanting one item (try_pop, else prepare,
 * re-check, wait, loop); one producer publishing NW items, each followed by
 * notify_one (load waiters; if any: bump seq, wake one).
 * Properties:
 *   no lost wake-up - no run ends with a consumer asleep while an item is
 *     there for it: spin reports such a run as an invalid end state;
 *   no early free - a consumer touches the park (seq, the futex) only while
 *     it is counted in waiters, so an owner that frees the park once
 *     waiters is 0 (and its notifiers have returned) never frees it under a
 *     sleeper (assertion).
 * Planted bugs: -DPLANT=1 notifies before the item is published (issue 8's
 * "notify before the predicate is set"): a lost wake-up; -DPLANT=2 leaves
 * the waiter count before the futex wait: an early free.
 */
#define NW 2

byte items = 0;     /* the condition: items published, not yet taken */
byte waiters = 0;   /* conc__park.waiters */
byte seq = 0;       /* conc__park.seq, the futex word */
bool asleep[NW];
bool counted[NW];   /* the consumer is inside prepare .. end of wait */

/* FUTEX_WAKE of one sleeper */
inline futex_wake_one() {
	atomic {
		if
		:: asleep[0] -> asleep[0] = false
		:: asleep[1] -> asleep[1] = false
		:: else -> skip
		fi
	}
}

inline notify_one() {
	if
	:: waiters != 0 -> seq++; futex_wake_one()
	:: else -> skip
	fi
}

proctype consumer(byte me) {
	byte key;
	do
	:: atomic { items > 0 -> items--; break }   /* try_pop took one */
	:: atomic { items == 0 -> skip };            /* try_pop found none */
		waiters++; counted[me] = true;       /* prepare: RMW + fence ... */
		key = seq;                           /* ... and the key */
		if
		:: atomic { items > 0 -> skip };     /* re-check: cancel */
			waiters--; counted[me] = false
		:: atomic { items == 0 -> skip };
#if PLANT == 2
			waiters--; counted[me] = false; /* planted: leaves early */
#endif
			atomic {                     /* FUTEX_WAIT(seq, key) */
				assert(counted[me]);
				if
				:: seq == key -> asleep[me] = true
				:: else -> skip
				fi
			}
			!asleep[me];                 /* until woken */
#if PLANT != 2
			assert(counted[me]);
			waiters--; counted[me] = false
#endif
		fi
	od
}

proctype producer() {
	byte k = 0;
	do
	:: k < NW ->
#if PLANT == 1
		notify_one();                        /* planted: notify first */
		items++;
#else
		items++;                             /* the publishing write */
		notify_one();
#endif
		k++
	:: else -> break
	od
}

init {
	atomic {
		run producer();
		run consumer(0);
		run consumer(1)
	}
}
