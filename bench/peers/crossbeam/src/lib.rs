//! crossbeam-epoch, the peer of libconc's epoch core in bench_epoch.
//!
//! Each function is one thread's share of a run (bench/bench_epoch.c starts
//! the threads and times the run); the workloads are the ones libconc's rows
//! measure:
//!
//!   pin+unpin       `crossbeam_epoch::pin()` and the drop of its guard, on
//!                   the default collector, as a crossbeam user writes it; the
//!                   thread registers (its first pin) before the timed loop.
//!   retire+reclaim  allocate an object, pin, `defer_destroy` it, unpin; the
//!                   object's Drop counts the callback.  A run uses a
//!                   Collector of its own and drops it at the end: crossbeam
//!                   has no barrier, and dropping the last reference to the
//!                   collector is what runs every bag still queued, so the
//!                   count can be verified (== objects retired).
use crossbeam_epoch::{Collector, Owned};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// pin+unpin: `n` pairs on the default collector; returns the ns the loop
/// took (registration, the thread's first pin, is outside the timing).
#[no_mangle]
pub extern "C" fn cb_epoch_pin_unpin_loop(n: u64) -> u64 {
    drop(crossbeam_epoch::pin()); // registers the thread
    let t0 = Instant::now();
    for _ in 0..n {
        let guard = crossbeam_epoch::pin();
        drop(guard);
    }
    t0.elapsed().as_nanos() as u64
}

static RECLAIMED: AtomicU64 = AtomicU64::new(0);

/// What libconc's row retires: a node and a payload word.
#[allow(dead_code)]
struct Obj {
    v: u64,
}

impl Drop for Obj {
    fn drop(&mut self) {
        RECLAIMED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A collector for one retire+reclaim run, shared by its threads.
#[no_mangle]
pub extern "C" fn cb_epoch_collector_new() -> *mut Collector {
    Box::into_raw(Box::new(Collector::new()))
}

/// retire+reclaim, one thread's share: `n` objects allocated and retired
/// with `defer_destroy`, each under a pin of its own (libconc's retire is
/// called unpinned).  The thread's handle is dropped at the end, which
/// hands its last bag to the collector.
///
/// # Safety
/// `c` comes from `cb_epoch_collector_new` and is not yet dropped.
#[no_mangle]
pub unsafe extern "C" fn cb_epoch_retire_loop(c: *const Collector, n: u64) {
    let handle = (*c).register();
    for i in 0..n {
        let o = Owned::new(Obj { v: i });
        let guard = handle.pin();
        let p = o.into_shared(&guard);
        guard.defer_destroy(p);
    }
}

/// Drop the run's collector once every thread of the run has returned
/// (their handles are gone): that runs every callback still pending.
/// Returns how many callbacks ran since the last call.
///
/// # Safety
/// `c` comes from `cb_epoch_collector_new`; no thread uses it any more.
#[no_mangle]
pub unsafe extern "C" fn cb_epoch_collector_drop(c: *mut Collector) -> u64 {
    drop(Box::from_raw(c));
    RECLAIMED.swap(0, Ordering::Relaxed)
}
