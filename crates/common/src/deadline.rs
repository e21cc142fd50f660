//! The caller's deadline for a connection setup.

use std::time::Duration;

use tokio::time::Instant;

/// When a setup must be done, or never.
///
/// Whoever starts a connection owns its deadline; each adapter it goes
/// through (multistream-select, Noise, QUIC) takes the same deadline as a
/// parameter instead of running a timer of its own, so a slow step may use
/// whatever time the earlier ones left, and the setup fails at the
/// deadline, not before. It reads tokio's clock, so a test under a paused
/// clock sees it fire at an exact virtual time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Deadline(Option<Instant>);

/// A deadline passed before the work it bounded was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the deadline passed")]
pub struct Elapsed;

impl Deadline {
    /// No deadline: wait as long as the peer takes.
    pub const NONE: Deadline = Deadline(None);

    /// A deadline at `instant`.
    pub fn at(instant: Instant) -> Self {
        Self(Some(instant))
    }

    /// A deadline `duration` from now (none if that is beyond the clock's
    /// range).
    pub fn after(duration: Duration) -> Self {
        Self(Instant::now().checked_add(duration))
    }

    /// The instant, if there is a deadline.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Self(Some(a.min(b))),
            (a, b) => Self(a.or(b)),
        }
    }

    /// Runs `work` until it completes or the deadline passes.
    ///
    /// # Errors
    /// [`Elapsed`] if the deadline passed first (`work` is dropped).
    pub async fn run<F: IntoFuture>(self, work: F) -> Result<F::Output, Elapsed> {
        match self.0 {
            None => Ok(work.await),
            Some(instant) => tokio::time::timeout_at(instant, work)
                .await
                .map_err(|_| Elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_that_ends_in_time_completes() {
        let start = Instant::now();
        let sleep = tokio::time::sleep(Duration::from_secs(15));
        assert_eq!(
            Deadline::after(Duration::from_secs(30)).run(sleep).await,
            Ok(())
        );
        assert_eq!(start.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_runs_late_fails_at_the_deadline() {
        let start = Instant::now();
        let sleep = tokio::time::sleep(Duration::from_secs(15));
        assert_eq!(
            Deadline::after(Duration::from_secs(5)).run(sleep).await,
            Err(Elapsed)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_waits() {
        let start = Instant::now();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        assert_eq!(Deadline::NONE.run(sleep).await, Ok(()));
        assert_eq!(start.elapsed(), Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn the_earlier_deadline_wins() {
        let soon = Deadline::after(Duration::from_secs(1));
        let late = Deadline::after(Duration::from_secs(2));
        assert_eq!(soon.min(late), soon);
        assert_eq!(late.min(soon), soon);
        assert_eq!(Deadline::NONE.min(late), late);
        assert_eq!(late.min(Deadline::NONE), late);
    }
}
