//! The request slots: at most `max_concurrent_requests` guests run at once; up to
//! `max_queued_requests` more requests wait for a slot, each at most `queue_timeout`.
//! Beyond either bound a request is shed at once, with a 503 and `Retry-After`: a server
//! past its capacity answers quickly rather than letting every client time out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    /// Requests waiting for a slot now.
    queued: AtomicUsize,
    max_queued: usize,
    queue_timeout: Duration,
}

/// Why a request was shed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shed {
    /// Every slot was taken and the queue was full.
    QueueFull,
    /// It waited in the queue for `queue_timeout` without getting a slot.
    QueueTimeout(Duration),
}

/// One place in the queue, given back however the wait ends.
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub fn new(max_concurrent: usize, max_queued: usize, queue_timeout: Duration) -> Self {
        Slots {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            queued: AtomicUsize::new(0),
            max_queued,
            queue_timeout,
        }
    }

    /// A slot: at once if one is free, else after waiting in the queue, if there is room
    /// in it and one frees up in time.
    pub async fn take(&self) -> Result<OwnedSemaphorePermit, Shed> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Shed::QueueFull);
        }
        let _in_queue = InQueue(&self.queued);
        let waited = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned());
        match waited.await {
            Ok(permit) => Ok(permit.expect("the request slots are never closed")),
            Err(_) => Err(Shed::QueueTimeout(self.queue_timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_slots_requests_queue_and_past_the_queue_they_are_shed() {
        let slots = Arc::new(Slots::new(1, 1, Duration::from_secs(60)));
        let first = slots.take().await.unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take().await.map(drop) }
        });
        // The second waits in the queue: the third finds it full.
        while slots.queued.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(slots.take().await.err(), Some(Shed::QueueFull));
        drop(first);
        assert_eq!(
            waiting.await.unwrap(),
            Ok(()),
            "the queued one gets the freed slot"
        );
        assert_eq!(slots.queued.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_request_that_waits_too_long_is_shed() {
        let slots = Slots::new(1, 10, Duration::from_millis(10));
        let _held = slots.take().await.unwrap();
        let shed = slots.take().await.err();
        assert_eq!(shed, Some(Shed::QueueTimeout(Duration::from_millis(10))));
        assert_eq!(
            slots.queued.load(Ordering::Acquire),
            0,
            "its place is given back"
        );
    }
}
