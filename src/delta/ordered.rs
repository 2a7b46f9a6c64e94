//! Running jobs on worker threads while their results are consumed in order,
//! with a budget on the work in flight (taken but not yet consumed).
//!
//! Deltas are computed in parallel but written in member order, so that a patch
//! does not depend on the number of threads. A budget in bytes, rather than a
//! number of jobs, lets small members flow past a big one being diffed without
//! letting memory grow with the world: a job is started only while the work in
//! flight is under budget, or when nothing else is in flight (so a job bigger
//! than the budget still runs, alone).

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

struct State {
    next: usize,
    in_flight: u64,
    stopped: bool,
}

/// Calls `run(j)` for every job `j` in `0..costs.len()` on `threads` threads and
/// `consume(j, result)` for each, in order, on the calling thread. Stops at the
/// first error `consume` returns.
pub fn run_ordered<T: Send, E>(
    costs: &[u64],
    threads: usize,
    budget: u64,
    run: impl Fn(usize) -> T + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    let state = Mutex::new(State { next: 0, in_flight: 0, stopped: false });
    let wake = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(costs.len()) {
            let tx = tx.clone();
            let (state, wake, run) = (&state, &wake, &run);
            s.spawn(move || loop {
                let j = {
                    let mut st = state.lock().expect("job state");
                    loop {
                        if st.stopped || st.next >= costs.len() {
                            return;
                        }
                        let cost = costs[st.next];
                        if st.in_flight == 0 || st.in_flight + cost <= budget {
                            st.in_flight += cost;
                            st.next += 1;
                            break st.next - 1;
                        }
                        st = wake.wait(st).expect("job state");
                    }
                };
                if tx.send((j, run(j))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut done = BTreeMap::new();
        let mut result = Ok(());
        for (j, &cost) in costs.iter().enumerate() {
            let value = loop {
                if let Some(v) = done.remove(&j) {
                    break v;
                }
                let (k, v) = rx.recv().expect("a delta worker stopped early");
                done.insert(k, v);
            };
            {
                let mut st = state.lock().expect("job state");
                st.in_flight -= cost;
            }
            wake.notify_all();
            result = consume(j, value);
            if result.is_err() {
                break;
            }
        }
        state.lock().expect("job state").stopped = true;
        wake.notify_all();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_threads_and_budget() {
        let costs: Vec<u64> = (0..50).map(|i| (i * 37 % 11) as u64 * 100).collect();
        for (threads, budget) in [(1, 0), (2, 500), (4, 100_000)] {
            let mut seen = Vec::new();
            run_ordered(
                &costs,
                threads,
                budget,
                |j| j * 2,
                |j, v| {
                    assert_eq!(v, j * 2);
                    seen.push(j);
                    Ok::<(), ()>(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..50).collect::<Vec<_>>());
        }
        let r = run_ordered(&costs, 2, 1000, |j| j, |j, _| if j == 7 { Err(j) } else { Ok(()) });
        assert_eq!(r, Err(7));
    }
}
