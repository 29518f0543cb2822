//! A circuit breaker per back-end: after `threshold` consecutive failures the source is
//! not called for `open_for`; then one trial call is let through (half-open) — success
//! closes the circuit, failure opens it again. A broken back-end therefore costs one
//! timeout per `open_for`, not one per request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// The breaker's state as observed (metrics, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Duration,
    },
    /// A trial call is under way; others are refused until it reports.
    HalfOpen,
}

pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<Inner>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CircuitBreaker({:?})", self.state())
    }
}

impl CircuitBreaker {
    /// `threshold` is at least 1.
    pub fn new(threshold: u32, open_for: Duration, clock: Arc<dyn Clock>) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            open_for,
            clock,
            state: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may be made now. An open circuit whose time is up lets exactly one
    /// caller through (half-open).
    pub fn allow(&self) -> bool {
        let mut s = self.lock();
        match *s {
            Inner::Closed { .. } => true,
            Inner::HalfOpen => false,
            Inner::Open { until } => {
                if self.clock.now() >= until {
                    *s = Inner::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    pub fn record_success(&self) {
        *self.lock() = Inner::Closed { failures: 0 };
    }

    pub fn record_failure(&self) {
        let mut s = self.lock();
        let failures = match *s {
            Inner::Closed { failures } => failures + 1,
            // A failed trial (or a late failure while open) opens it again.
            Inner::HalfOpen | Inner::Open { .. } => self.threshold,
        };
        *s = if failures >= self.threshold {
            Inner::Open {
                until: self.clock.now() + self.open_for,
            }
        } else {
            Inner::Closed { failures }
        };
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { failures } => BreakerState::Closed { failures },
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_the_threshold_and_recovers_through_one_trial() {
        let clock = Arc::new(ManualClock::new());
        let b = CircuitBreaker::new(3, Duration::from_secs(30), clock.clone());
        for n in 1..3 {
            assert!(b.allow());
            b.record_failure();
            assert_eq!(b.state(), BreakerState::Closed { failures: n });
        }
        assert!(b.allow());
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow(), "open: no calls");
        clock.advance(Duration::from_secs(29));
        assert!(!b.allow());
        clock.advance(Duration::from_secs(1));
        assert!(b.allow(), "the trial call");
        assert!(!b.allow(), "only one trial at a time");
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed trial reopens");
        clock.advance(Duration::from_secs(30));
        assert!(b.allow());
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert!(b.allow());
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(1), Arc::new(ManualClock::new()));
        b.record_failure();
        b.record_success();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed { failures: 1 });
    }
}
