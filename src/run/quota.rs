//! The agent's quota: one rate limiter (rate, burst) and one pool of request slots
//! (concurrency), shared by every run that uses the same [`Quota`].
//!
//! The command line makes a private one from its flags; the service makes one for the agent
//! and hands it to every job, so however many jobs run, the upstream never sees more than the
//! configured rate or concurrency. Fair share lives here: a slot that comes free goes to the
//! runs that wait for one in turn (round robin), so a short list is not stuck behind a long
//! one; the pipeline's window, backoff parking and ordering do not know about other runs.

use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, RateLimiter};
use tokio::sync::oneshot;

/// A handle on one quota; clones share it.
#[derive(Clone)]
pub struct Quota {
    inner: Arc<Inner>,
}

struct Inner {
    limiter: DefaultDirectRateLimiter,
    /// One task at a time waits for the limiter, in the order they asked (see [`Quota::pace`]).
    pace_turn: tokio::sync::Mutex<()>,
    slots: Mutex<Slots>,
    concurrency: NonZeroUsize,
    next_member: AtomicU64,
}

/// The slot pool: free slots, and who waits for one.
struct Slots {
    free: usize,
    /// Per run, its waiters in the order they asked.
    waiting: HashMap<u64, VecDeque<oneshot::Sender<Slot>>>,
    /// The runs with waiters, in the order they are served next.
    turns: VecDeque<u64>,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota")
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

impl Quota {
    pub fn new(rate: NonZeroU32, burst: NonZeroU32, concurrency: NonZeroUsize) -> Quota {
        Quota {
            inner: Arc::new(Inner {
                limiter: RateLimiter::direct(governor::Quota::per_second(rate).allow_burst(burst)),
                pace_turn: tokio::sync::Mutex::new(()),
                slots: Mutex::new(Slots {
                    free: concurrency.get(),
                    waiting: HashMap::new(),
                    turns: VecDeque::new(),
                }),
                concurrency,
                next_member: AtomicU64::new(0),
            }),
        }
    }

    /// Requests in flight at most, over all runs.
    pub fn concurrency(&self) -> NonZeroUsize {
        self.inner.concurrency
    }

    /// A new run's place in the turns.
    pub fn member(&self) -> Member {
        Member {
            quota: self.clone(),
            id: self.inner.next_member.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.inner.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the rate limiter lets one more request go.
    ///
    /// Waiting is done here rather than with governor's `until_ready`: a timer wakes a task
    /// a little late, and with a burst of 1 every late request pushes all later ones back (at
    /// `--rate 200` a run took 3.5% longer than it should; BENCHMARKS.md). So the waiter
    /// sleeps until shortly before its turn and yields for the last stretch, and only one
    /// task waits at a time, so that only one ever does so (and rows go in the order they
    /// asked: with slots handed out in turn, that is the runs' turns too).
    pub async fn pace(&self) {
        // tokio's timer fires on millisecond ticks: sleep to just before the turn, no further.
        const YIELD_FOR: Duration = Duration::from_micros(1_100);
        let limiter = &self.inner.limiter;
        let _turn = self.inner.pace_turn.lock().await;
        loop {
            let Err(not_until) = limiter.check() else {
                return;
            };
            let wait = not_until.wait_time_from(governor::clock::Clock::now(limiter.clock()));
            if wait > YIELD_FOR {
                tokio::time::sleep(wait - YIELD_FOR).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Lets one more request go at once if nobody is waiting and the limiter has room.
    pub fn try_pace(&self) -> bool {
        match self.inner.pace_turn.try_lock() {
            Ok(_turn) => self.inner.limiter.check().is_ok(),
            Err(_) => false,
        }
    }

    /// Gives a freed slot to the next waiting run, or back to the pool.
    fn release(&self) {
        let mut slots = self.slots();
        while let Some(member) = slots.turns.pop_front() {
            let Some(queue) = slots.waiting.get_mut(&member) else {
                continue;
            };
            let waiter = queue.pop_front();
            if queue.is_empty() {
                slots.waiting.remove(&member);
            } else {
                slots.turns.push_back(member);
            }
            if let Some(waiter) = waiter {
                let slot = Slot {
                    quota: Some(self.clone()),
                };
                match waiter.send(slot) {
                    Ok(()) => return,
                    // That waiter gave up: the slot goes to the next one, without releasing.
                    Err(mut unsent) => unsent.quota = None,
                }
            }
        }
        slots.free += 1;
    }
}

/// One run's place in the quota's turns.
#[derive(Debug)]
pub struct Member {
    quota: Quota,
    id: u64,
}

impl Member {
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// A request slot now, if one is free and no other run is waiting for one.
    pub fn try_slot(&self) -> Option<Slot> {
        let mut slots = self.quota.slots();
        if slots.free > 0 && slots.turns.is_empty() {
            slots.free -= 1;
            return Some(Slot {
                quota: Some(self.quota.clone()),
            });
        }
        None
    }

    /// Waits for a request slot; runs that wait are served in turn. Dropping the future
    /// gives up the place (a slot sent meanwhile goes back, as [`Slot`]'s drop does).
    pub async fn slot(&self) -> Slot {
        let waiter_rx = {
            let mut slots = self.quota.slots();
            if slots.free > 0 && slots.turns.is_empty() {
                slots.free -= 1;
                return Slot {
                    quota: Some(self.quota.clone()),
                };
            }
            let (waiter_tx, waiter_rx) = oneshot::channel();
            let queue = slots.waiting.entry(self.id).or_default();
            let first = queue.is_empty();
            queue.push_back(waiter_tx);
            if first {
                slots.turns.push_back(self.id);
            }
            waiter_rx
        };
        waiter_rx
            .await
            .expect("a waiter's sender is only dropped after sending")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut slots = self.quota.slots();
        slots.waiting.remove(&self.id);
        slots.turns.retain(|&member| member != self.id);
    }
}

/// One request slot, held for one row's turn; dropping it frees it.
#[derive(Debug)]
pub struct Slot {
    quota: Option<Quota>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(quota) = self.quota.take() {
            quota.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(concurrency: usize) -> Quota {
        Quota::new(
            NonZeroU32::new(1000).unwrap(),
            NonZeroU32::new(1000).unwrap(),
            NonZeroUsize::new(concurrency).unwrap(),
        )
    }

    #[tokio::test]
    async fn freed_slots_go_to_waiting_runs_in_turn() {
        let quota = quota(1);
        let (a, b) = (quota.member(), quota.member());
        let held = a.try_slot().expect("a free slot");
        assert!(b.try_slot().is_none());
        // Run a queues three turns, then run b one: b must not wait behind all of a's.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (member, name) in [(&a, "a1"), (&a, "a2"), (&a, "a3"), (&b, "b1")] {
            let order = order.clone();
            let waiting = member.slot();
            tasks.push(async move {
                let slot = waiting.await;
                order.lock().unwrap().push(name);
                tokio::task::yield_now().await;
                drop(slot);
            });
        }
        let all = futures::future::join_all(tasks);
        tokio::pin!(all);
        assert!(futures::poll!(&mut all).is_pending());
        drop(held);
        all.await;
        assert_eq!(*order.lock().unwrap(), ["a1", "b1", "a2", "a3"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_lose_the_slot() {
        let quota = quota(1);
        let (a, b) = (quota.member(), quota.member());
        let held = a.try_slot().unwrap();
        let mut gave_up = Box::pin(b.slot());
        assert!(futures::poll!(&mut gave_up).is_pending());
        drop(held);
        // The slot was sent to b's waiter, which is dropped unreceived: it must come back.
        drop(gave_up);
        let slot = a.try_slot().expect("the slot came back");
        // A run that ends drops its waiters with it.
        let c = quota.member();
        let mut waiting = Box::pin(c.slot());
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(waiting);
        drop(c);
        drop(slot);
        assert_eq!(quota.slots().free, 1);
        assert!(quota.slots().turns.is_empty());
    }

    #[tokio::test]
    async fn never_more_slots_out_than_the_concurrency() {
        let quota = quota(3);
        let members: Vec<Member> = (0..4).map(|_| quota.member()).collect();
        let in_flight = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for member in &members {
            for _ in 0..20 {
                let (in_flight, most) = (in_flight.clone(), most.clone());
                tasks.push(async move {
                    let _slot = member.slot().await;
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
        futures::future::join_all(tasks).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
        assert_eq!(quota.slots().free, 3);
    }
}
