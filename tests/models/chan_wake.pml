/*
 * chan_wake.pml - the waiting protocol of src/chan/chan.c (bounded and
 * unbounded flavours, single calls and select alike), checked with spin.
 *
 * A MODEL, NOT THE CODE: a hand-written abstraction, checked for every
 * interleaving under sequential consistency - which is what chan.c's
 * store-buffering argument buys: the waiter's seq_cst store of nonempty +
 * fence before its re-check, and the publisher's seq_cst RMW of the index
 * before its seq_cst load of nonempty, are in one total order.  A waker
 * list's lock is one atomic step; the futex is the kernel's (sleep only
 * while state is not yet 1, in one step).
 *
 * Processes: R, a select receiving from A or B; P, a plain receive from A;
 * SA and SB, each sending one item (on A, on B) and then notify_one: when
 * the list is non-empty (a load), lock and claim the first entry whose
 * context is still WAITING (CAS sel 0 -> the entry), unlink it, set the
 * context's state to 1 and wake it.  A waiter: try (any ready operation),
 * else register its entries, re-check, sleep until claimed; then leave
 * (CAS sel 0 -> ABORTED, failing when claimed), unregister, and - when it
 * was claimed - try the claimed operation first, then loop.
 * Property: no lost wake-up - when everything has stopped, no receiver
 * sleeps while an item it wants is there (the monitor's assertion at
 * timeout; starving legitimately - P when R took A's only item - is fine).
 * Planted bugs: -DPLANT=1 skips the re-check after registering (the
 * store-buffering argument's waiter half); -DPLANT=2 lets a claimed select
 * take any ready operation instead of the claimed one first, so the
 * notification it absorbed is lost to the other waiter.
 */
byte a = 0, b = 0;                 /* items buffered in A and B */
bool rA = false, rB = false;       /* R's entries linked in A's, B's list */
bool pA = false;                   /* P's entry linked in A's list */
byte selR = 0, selP = 0;           /* 0 WAITING, 1 ABORTED, 2 claimed by A, 3 by B */
bool stR = false, stP = false;     /* state == 1: the claimer is done */
bool slR = false, slP = false;     /* asleep in FUTEX_WAIT */
bool doneR = false, doneP = false;

inline notify_a() {
	if
	:: (rA || pA) ->                 /* the seq_cst load of nonempty */
		atomic {                 /* lock; claim the first WAITING entry */
			if
			:: rA && selR == 0 -> selR = 2; rA = false; stR = true; slR = false
			:: pA && selP == 0 -> selP = 2; pA = false; stP = true; slP = false
			:: else -> skip
			fi
		}
	:: else -> skip
	fi
}

inline notify_b() {
	if
	:: rB ->
		atomic {
			if
			:: rB && selR == 0 -> selR = 3; rB = false; stR = true; slR = false
			:: else -> skip
			fi
		}
	:: else -> skip
	fi
}

proctype SA() { a++; notify_a() }
proctype SB() { b++; notify_b() }

proctype R() {
	bool aborted;
	do
	:: atomic { a > 0 -> a--; doneR = true }; break
	:: atomic { b > 0 -> b--; doneR = true }; break
	:: atomic { a == 0 && b == 0 -> selR = 0; stR = false };
		atomic { rA = true };     /* register on A (its lock) */
		atomic { rB = true };     /* register on B */
#if PLANT != 1
		if
		:: atomic { (a > 0 || b > 0) -> skip }   /* re-check: ready */
		:: atomic { (a == 0 && b == 0) -> skip };
#endif
			atomic { if :: !stR -> slR = true :: else -> skip fi };
end_r:			!slR
#if PLANT != 1
		fi
#endif
		atomic {                  /* leave */
			if
			:: selR == 0 -> selR = 1; aborted = true
			:: else -> aborted = false
			fi
		}
		atomic { rA = false };    /* unregister */
		atomic { rB = false };
#if PLANT != 2
		if
		:: !aborted && selR == 2 -> atomic { if :: a > 0 -> a--; doneR = true :: else -> skip fi }
		:: !aborted && selR == 3 -> atomic { if :: b > 0 -> b--; doneR = true :: else -> skip fi }
		:: else -> skip
		fi;
		if
		:: doneR -> break
		:: else -> skip
		fi
#endif
	od
}

proctype P() {
	bool aborted;
	do
	:: atomic { a > 0 -> a--; doneP = true }; break
	:: atomic { a == 0 -> selP = 0; stP = false };
		atomic { pA = true };
#if PLANT != 1
		if
		:: atomic { a > 0 -> skip }
		:: atomic { a == 0 -> skip };
#endif
			atomic { if :: !stP -> slP = true :: else -> skip fi };
end_p:			!slP
#if PLANT != 1
		fi
#endif
		atomic {
			if
			:: selP == 0 -> selP = 1; aborted = true
			:: else -> aborted = false
			fi
		}
		atomic { pA = false };
		if
		:: !aborted -> atomic { if :: a > 0 -> a--; doneP = true :: else -> skip fi }
		:: else -> skip
		fi;
		if
		:: doneP -> break
		:: else -> skip
		fi
	od
}

proctype monitor() {
	timeout ->
	/* everything stopped: nobody sleeps beside an item it wants */
	assert(!(slP && a > 0) && !(slR && (a > 0 || b > 0)))
}

init {
	atomic {
		run R();
		run P();
		run SA();
		run SB();
		run monitor()
	}
}
