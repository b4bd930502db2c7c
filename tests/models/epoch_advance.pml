/*
 * epoch_advance.pml - a Promela model of libconc's epoch-advance rule
 * (src/epoch/epoch.c, src/epoch/alg_epoch.h), checked with spin.
 *
 * A MODEL, NOT THE CODE: this is a hand-written abstraction of the rule,
 * checked for every interleaving under sequential consistency (what the
 * pin's fence - or membarrier - and the advancer's barrier buy, per the
 * proof in src/epoch/epoch.c).  The relaxed-memory check of the real code is
 * tests/models/relacy_epoch.cc.
 *
 * The rule: E only grows, by an advance from e to e+1 that first checks
 * every participant: a pinned reader must show e.  A reader pins by reading
 * E and then (a separate step: it may be stale by then) announcing "pinned
 * at that e".  A node unlinked and then retired with tag t = E is freed
 * once E >= t + GRACE.
 *
 * Processes: NR readers, each doing ROUNDS critical sections (pin, load the
 * shared pointer, use the object, unpin); one writer that replaces the
 * object SWAPS times, retiring the old one, and advances until it is due,
 * then frees it.
 * Property (safety; assertion): no use after free - a reader never uses an
 * object that was freed.
 * Planted bug (-DPLANT): the advance checks only the first reader (issue
 * 8's "advance without checking every participant"); spin must report the
 * use after free.
 */
#define NR 2
#define ROUNDS 2
#define SWAPS 2
#define GRACE 3

byte E = 0;
bool pinned[NR];
byte pin_e[NR];
byte ptr = 0;            /* the object readers reach: 0 .. SWAPS */
bool freed[SWAPS + 1];

/* try_advance: read E, check every participant, CAS E from e to e+1. */
inline try_advance() {
	e = E;
	ok = true;
	r = 0;
	do
#ifdef PLANT
	:: r < 1 ->
#else
	:: r < NR ->
#endif
		if
		:: pinned[r] && pin_e[r] != e -> ok = false
		:: else -> skip
		fi;
		r++
	:: else -> break
	od;
	atomic { if :: ok && E == e -> E = e + 1 :: else -> skip fi }
}

proctype reader(byte me) {
	byte e, o, k = 0;
	do
	:: k < ROUNDS ->
		e = E;                                /* pin: read E ...          */
		pin_e[me] = e; pinned[me] = true;     /* ... then announce it     */
		o = ptr;                              /* load the shared pointer  */
		assert(!freed[o]);                    /* use the object           */
		pinned[me] = false;                   /* unpin                    */
		k++
	:: else -> break
	od
}

proctype writer() {
	byte e, r, t, old, k = 0;
	bool ok;
	do
	:: k < SWAPS ->
		old = ptr;
		ptr = k + 1;                          /* unlink the old object    */
		t = E;                                /* retire: tag after unlink */
		do
		:: E >= t + GRACE -> freed[old] = true; break
		:: else -> try_advance()
		od;
		k++
	:: else -> break
	od
}

init {
	atomic {
		run writer();
		run reader(0);
		run reader(1)
	}
}
