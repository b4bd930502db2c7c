//! rayon behind a C ABI for libconc's benches (bench/peers/rayon_peer.h is
//! the C side).  A pool is made once (`rayon_pool_new`) and every call runs
//! on it, as the libconc side runs on a pool made before timing.

use rayon::prelude::*;
use std::hint::black_box;
use std::os::raw::c_void;

pub type WorkFn = extern "C" fn(*mut c_void);

/// A C pointer handed to the pool's threads (the C side keeps it valid and
/// its target thread-safe).
#[derive(Clone, Copy)]
struct Ptr(*mut c_void);
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

#[no_mangle]
pub extern "C" fn rayon_pool_new(threads: u32) -> *mut rayon::ThreadPool {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads as usize)
        .build()
    {
        Ok(p) => Box::into_raw(Box::new(p)),
        Err(_) => std::ptr::null_mut(),
    }
}

/// # Safety
/// p from rayon_pool_new, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rayon_pool_free(p: *mut rayon::ThreadPool) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

/// W9a: `groups` scopes in turn, each spawning `tasks` calls of f(arg) and
/// waiting for them (the scope's end).
///
/// # Safety
/// p from rayon_pool_new; f(arg) callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn rayon_scope_groups(
    p: *mut rayon::ThreadPool,
    groups: u32,
    tasks: u32,
    f: WorkFn,
    arg: *mut c_void,
) {
    let pool = &*p;
    let a = Ptr(arg);
    for _ in 0..groups {
        pool.scope(|s| {
            for _ in 0..tasks {
                s.spawn(move |_| {
                    let a = a;
                    f(a.0)
                });
            }
        });
    }
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        return n as u64;
    }
    let (a, b) = rayon::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

/// W9c: fib(n) by rayon::join, no cutoff, on the pool.
///
/// # Safety
/// p from rayon_pool_new.
#[no_mangle]
pub unsafe extern "C" fn rayon_fib(p: *mut rayon::ThreadPool, n: u32) -> u64 {
    (*p).install(|| fib(n))
}

/// W5: the sum of 2e over e in [0, n), par_iter (every element through
/// black_box, as the C side's bench_keep).
///
/// # Safety
/// p from rayon_pool_new.
#[no_mangle]
pub unsafe extern "C" fn rayon_sum2e(p: *mut rayon::ThreadPool, n: u64) -> u64 {
    (*p).install(|| (0..n).into_par_iter().map(|e| black_box(2 * e)).sum())
}

/// W5 map: out[e] = 150 rounds of x ^= x >> 29; x *= 0x9E3779B97F4A7C15;
/// x += round, from x = e, over [0, n), par_iter_mut (each result through
/// black_box, as the C side's bench_keep).
///
/// # Safety
/// p from rayon_pool_new; out holds n u64s, not touched by anyone else
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn rayon_map(p: *mut rayon::ThreadPool, out: *mut u64, n: u64) {
    let out = std::slice::from_raw_parts_mut(out, n as usize);
    (*p).install(|| {
        out.par_iter_mut().enumerate().for_each(|(e, o)| {
            let mut x = e as u64;
            for r in 0..150u64 {
                x ^= x >> 29;
                x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                x = x.wrapping_add(r);
            }
            *o = black_box(x);
        })
    })
}
