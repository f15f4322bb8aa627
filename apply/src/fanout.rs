//! Bounded fan-out: node-side work runs on many hosts at once, at most N at a time (Ansible's
//! forks), with the results in the order of the items, whatever order they finished in.
//!
//! The work is mostly waiting on processes (ssh, kubectl, birdc), so threads are the right
//! tool: no async runtime, and no more threads than the bound.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many hosts apply works on at once unless told otherwise (`--parallelism`, the part
/// Ansible's `forks` plays). Each host's steps are short commands that mostly wait on the
/// network, so sixteen keep two cores busy without a thread per node of a large cluster.
pub const DEFAULT_PARALLELISM: usize = 16;

/// Runs `work` on every item, at most `parallelism` at once (at least one), and returns the
/// results in the items' order. A panic in `work` is passed on once every worker has stopped.
pub fn fan_out<T: Sync, R: Send>(items: &[T], parallelism: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = parallelism.max(1).min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    *results[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).expect("every item was worked on"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn results_come_in_item_order_and_the_bound_holds() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<u64> = (0..24).collect();
        let started = Instant::now();
        let results = fan_out(&items, 8, |item| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // Later items finish first.
            std::thread::sleep(Duration::from_millis(30 - *item));
            running.fetch_sub(1, Ordering::SeqCst);
            item * 2
        });
        assert_eq!(results, items.iter().map(|item| item * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 8);
        // Three rounds of at most 30 ms, not 24 items one after the other (~450 ms).
        assert!(started.elapsed() < Duration::from_millis(300), "{:?}", started.elapsed());
        assert_eq!(fan_out(&items, 1, |item| *item), items);
        assert!(fan_out(&[] as &[u64], 4, |item| *item).is_empty());
    }
}
