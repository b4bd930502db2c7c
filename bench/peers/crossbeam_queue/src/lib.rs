//! crossbeam's SegQueue (bench_queue) and a Treiber stack on crossbeam-epoch
//! (bench_stack), behind C functions the bench's C code calls per item.
//!
//! SegQueue<usize> is crossbeam's unbounded MPMC queue (linearizable FIFO).
//! The stack is the Treiber stack of crossbeam-epoch's own documentation and
//! tests: a CAS on the head under a pin, the popped node handed to
//! `defer_destroy`, on the default collector.
use crossbeam_epoch::{self as epoch, Atomic, Owned};
use crossbeam_queue::SegQueue;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

#[no_mangle]
pub extern "C" fn cb_segq_new() -> *mut SegQueue<usize> {
    Box::into_raw(Box::new(SegQueue::new()))
}

/// # Safety
/// `q` comes from `cb_segq_new`; no thread uses it any more.
#[no_mangle]
pub unsafe extern "C" fn cb_segq_free(q: *mut SegQueue<usize>) {
    drop(Box::from_raw(q));
}

/// # Safety
/// `q` comes from `cb_segq_new` and is not yet freed.
#[no_mangle]
pub unsafe extern "C" fn cb_segq_push(q: *const SegQueue<usize>, v: usize) {
    (*q).push(v);
}

/// # Safety
/// `q` comes from `cb_segq_new`; `v` is writable.
#[no_mangle]
pub unsafe extern "C" fn cb_segq_pop(q: *const SegQueue<usize>, v: *mut usize) -> bool {
    match (*q).pop() {
        Some(x) => {
            *v = x;
            true
        }
        None => false,
    }
}

pub struct TreiberStack {
    head: Atomic<Node>,
}

struct Node {
    data: ManuallyDrop<usize>,
    next: Atomic<Node>,
}

#[no_mangle]
pub extern "C" fn cb_stack_new() -> *mut TreiberStack {
    Box::into_raw(Box::new(TreiberStack { head: Atomic::null() }))
}

/// # Safety
/// `s` comes from `cb_stack_new` and is empty; no thread uses it any more.
#[no_mangle]
pub unsafe extern "C" fn cb_stack_free(s: *mut TreiberStack) {
    drop(Box::from_raw(s));
}

/// # Safety
/// `s` comes from `cb_stack_new` and is not yet freed.
#[no_mangle]
pub unsafe extern "C" fn cb_stack_push(s: *const TreiberStack, v: usize) {
    let mut n = Owned::new(Node { data: ManuallyDrop::new(v), next: Atomic::null() });
    let guard = epoch::pin();
    loop {
        let head = (*s).head.load(Relaxed, &guard);
        n.next.store(head, Relaxed);
        match (*s).head.compare_exchange(head, n, Release, Relaxed, &guard) {
            Ok(_) => break,
            Err(e) => n = e.new,
        }
    }
}

/// # Safety
/// `s` comes from `cb_stack_new`; `v` is writable.
#[no_mangle]
pub unsafe extern "C" fn cb_stack_pop(s: *const TreiberStack, v: *mut usize) -> bool {
    let guard = epoch::pin();
    loop {
        let head = (*s).head.load(Acquire, &guard);
        match head.as_ref() {
            Some(h) => {
                let next = h.next.load(Relaxed, &guard);
                if (*s).head.compare_exchange(head, next, Relaxed, Relaxed, &guard).is_ok() {
                    *v = ptr::read(&*h.data);
                    guard.defer_destroy(head);
                    return true;
                }
            }
            None => return false,
        }
    }
}
