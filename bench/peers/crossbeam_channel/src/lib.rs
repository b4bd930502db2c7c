//! W7a-W7d (shared/WORKLOADS.md) on crossbeam-channel, each a C function
//! that runs the whole workload with std threads, times its region and
//! checks its result: returns the seconds, or a negative value when the
//! result was wrong.
use crossbeam_channel::{bounded, select, unbounded, Receiver};
use std::thread;
use std::time::Instant;

/// W7a: channel of capacity `cap` (usize::MAX: unbounded), p senders of n
/// distinct values each, p receivers until disconnected (the senders'
/// handles all dropped = the last sender closes).
#[no_mangle]
pub extern "C" fn cbc_w7a(p: u32, n: u64, cap: u64) -> f64 {
    let (tx, rx) = if cap == u64::MAX { unbounded() } else { bounded(cap as usize) };
    let p = p as u64;
    let start = Instant::now();
    let mut rs = Vec::new();
    for _ in 0..p {
        let rx = rx.clone();
        rs.push(thread::spawn(move || {
            let (mut c, mut s) = (0u64, 0u64);
            while let Ok(v) = rx.recv() {
                c += 1;
                s = s.wrapping_add(v);
            }
            (c, s)
        }));
    }
    drop(rx);
    let mut ss = Vec::new();
    for i in 0..p {
        let tx = tx.clone();
        ss.push(thread::spawn(move || {
            for k in 0..n {
                tx.send(i * n + k + 1).unwrap();
            }
        }));
    }
    drop(tx);
    for s in ss {
        s.join().unwrap();
    }
    let (mut c, mut s) = (0u64, 0u64);
    for r in rs {
        let (a, b) = r.join().unwrap();
        c += a;
        s = s.wrapping_add(b);
    }
    let t = start.elapsed().as_secs_f64();
    let total = p * n;
    if c != total || s != total.wrapping_mul(total + 1) / 2 {
        return -1.0;
    }
    t
}

/// W7b: two threads ping-pong one token over two zero-capacity channels,
/// `rounds` round trips.
#[no_mangle]
pub extern "C" fn cbc_w7b(rounds: u64) -> f64 {
    let (ta, ra) = bounded::<u64>(0);
    let (tb, rb) = bounded::<u64>(0);
    let start = Instant::now();
    let h = thread::spawn(move || {
        let mut c = 0;
        while let Ok(v) = ra.recv() {
            tb.send(v + 1).unwrap();
            c += 1;
        }
        c
    });
    let mut v = 0u64;
    for _ in 0..rounds {
        ta.send(v).unwrap();
        v = rb.recv().unwrap();
    }
    drop(ta);
    let c = h.join().unwrap();
    let t = start.elapsed().as_secs_f64();
    if c != rounds || v != rounds {
        return -1.0;
    }
    t
}

fn sel4(rx: &[Receiver<u64>; 4]) -> (u64, u64) {
    let mut open = [true; 4];
    let (mut c, mut s) = (0u64, 0u64);
    let never = crossbeam_channel::never::<u64>();
    while open.iter().any(|&o| o) {
        let r0 = if open[0] { &rx[0] } else { &never };
        let r1 = if open[1] { &rx[1] } else { &never };
        let r2 = if open[2] { &rx[2] } else { &never };
        let r3 = if open[3] { &rx[3] } else { &never };
        select! {
            recv(r0) -> m => match m { Ok(v) => { c += 1; s = s.wrapping_add(v); } Err(_) => open[0] = false },
            recv(r1) -> m => match m { Ok(v) => { c += 1; s = s.wrapping_add(v); } Err(_) => open[1] = false },
            recv(r2) -> m => match m { Ok(v) => { c += 1; s = s.wrapping_add(v); } Err(_) => open[2] = false },
            recv(r3) -> m => match m { Ok(v) => { c += 1; s = s.wrapping_add(v); } Err(_) => open[3] = false },
        }
    }
    (c, s)
}

/// W7c: 4 senders, each on its own channel of capacity 128, n values each;
/// one receiver selects over the 4 until all are disconnected and drained.
#[no_mangle]
pub extern "C" fn cbc_w7c(n: u64) -> f64 {
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..4 {
        let (t, r) = bounded::<u64>(128);
        txs.push(t);
        rxs.push(r);
    }
    let rx: [Receiver<u64>; 4] = [rxs[0].clone(), rxs[1].clone(), rxs[2].clone(), rxs[3].clone()];
    drop(rxs);
    let start = Instant::now();
    let mut ss = Vec::new();
    for (i, tx) in txs.into_iter().enumerate() {
        let i = i as u64;
        ss.push(thread::spawn(move || {
            for k in 0..n {
                tx.send(i * n + k + 1).unwrap();
            }
        }));
    }
    let (c, s) = sel4(&rx);
    for h in ss {
        h.join().unwrap();
    }
    let t = start.elapsed().as_secs_f64();
    let total = 4 * n;
    if c != total || s != total.wrapping_mul(total + 1) / 2 {
        return -1.0;
    }
    t
}
