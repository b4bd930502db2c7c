//! rayon's parallel sorts behind a C ABI, for bench/bench_algo.c.
use rayon::prelude::*;
use rayon::ThreadPool;
use std::os::raw::{c_int, c_void};

/// A pool of `threads` threads (rayon's own, not the global one).
#[no_mangle]
pub extern "C" fn rs_pool_new(threads: usize) -> *mut ThreadPool {
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(_) => std::ptr::null_mut(),
    }
}

/// # Safety
/// p from rs_pool_new, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rs_pool_free(p: *mut ThreadPool) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

/// # Safety
/// a: n valid u64; p a live pool.
#[no_mangle]
pub unsafe extern "C" fn rs_par_sort_unstable_u64(p: *const ThreadPool, a: *mut u64, n: usize) {
    let s = std::slice::from_raw_parts_mut(a, n);
    (*p).install(|| s.par_sort_unstable());
}

/// # Safety
/// as above.
#[no_mangle]
pub unsafe extern "C" fn rs_par_sort_u64(p: *const ThreadPool, a: *mut u64, n: usize) {
    let s = std::slice::from_raw_parts_mut(a, n);
    (*p).install(|| s.par_sort());
}

pub type CmpFn = extern "C" fn(*const c_void, *const c_void, *mut c_void) -> c_int;

/// par_sort_unstable_by with a C comparator (qsort_r's convention).
/// # Safety
/// as above.
#[no_mangle]
pub unsafe extern "C" fn rs_par_sort_unstable_by_u64(
    p: *const ThreadPool,
    a: *mut u64,
    n: usize,
    cmp: CmpFn,
) {
    let s = std::slice::from_raw_parts_mut(a, n);
    (*p).install(|| {
        s.par_sort_unstable_by(|x, y| {
            cmp(x as *const u64 as *const c_void, y as *const u64 as *const c_void, std::ptr::null_mut()).cmp(&0)
        })
    });
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Rec {
    pub key: u64,
    pub idx: u64,
}

/// Stable: par_sort_by_key on the key (rayon's parallel merge sort).
/// # Safety
/// a: n valid records; p a live pool.
#[no_mangle]
pub unsafe extern "C" fn rs_par_sort_rec(p: *const ThreadPool, a: *mut Rec, n: usize) {
    let s = std::slice::from_raw_parts_mut(a, n);
    (*p).install(|| s.par_sort_by_key(|r| r.key));
}

/// Stable, with a C comparator.
/// # Safety
/// as above.
#[no_mangle]
pub unsafe extern "C" fn rs_par_sort_rec_by(p: *const ThreadPool, a: *mut Rec, n: usize, cmp: CmpFn) {
    let s = std::slice::from_raw_parts_mut(a, n);
    (*p).install(|| {
        s.par_sort_by(|x, y| {
            cmp(x as *const Rec as *const c_void, y as *const Rec as *const c_void, std::ptr::null_mut()).cmp(&0)
        })
    });
}
