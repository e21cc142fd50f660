//! Loss models for datagram links: deterministic for a given seed.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::{Error, trace::LossDelayTrace};

/// Which datagrams a link drops.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LossModel {
    /// Every datagram arrives.
    #[default]
    None,
    /// Each datagram is lost independently with probability `p`.
    Bernoulli {
        /// Loss probability, in `[0, 1]`.
        p: f64,
    },
    /// Two-state bursty loss (Gilbert-Elliott).
    GilbertElliott(GilbertElliott),
    /// Each datagram's fate (lost, or its one-way delay) read from a trace,
    /// in order, cycling.
    Trace(LossDelayTrace),
}

/// The Gilbert-Elliott model: a Markov chain with a good and a bad state,
/// each with its own loss probability. Real losses come in bursts; this is
/// the standard two-parameter (Gilbert) or four-parameter description of
/// them (RFC 3611 section 4.7.2 reports its parameters; netem implements it).
///
/// Per datagram, the current state decides whether it is lost, then the
/// chain moves: good → bad with probability `p`, bad → good with `r`.
///
/// With a `step`, the chain also moves once per whole step of time between
/// two datagrams beyond the first (a fraction of a step is dropped: two
/// datagrams less than two steps apart see the per-datagram chain alone).
/// Without one it moves only when a datagram
/// passes, so a sender that backs off (TCP's and QUIC's retransmission
/// timers double) finds the chain frozen in the bad state, and a burst of
/// a few packets becomes a blackout of seconds that no real path has;
/// with one, a burst also ends in time. Stepping once per step of idle
/// time is what a link busy at that packet rate would do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state.
    pub p: f64,
    /// Probability of moving from the bad to the good state.
    pub r: f64,
    /// Loss probability in the good state (`1 - k` in the literature).
    pub loss_good: f64,
    /// Loss probability in the bad state (`1 - h`).
    pub loss_bad: f64,
    /// The time that moves the chain one step when no datagram passes
    /// (`None`: only datagrams move it).
    pub step: Option<std::time::Duration>,
}

impl GilbertElliott {
    /// The Gilbert model (every datagram lost in the bad state, none in the
    /// good one) with the given mean loss rate and mean burst length (mean
    /// number of consecutive losses, ≥ 1).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless `0 ≤ loss < 1` and `burst ≥ 1`.
    pub fn with_mean_loss(loss: f64, burst: f64) -> Result<Self, Error> {
        if !(0.0..1.0).contains(&loss) {
            return Err(Error::InvalidConfig("mean loss must be in [0, 1)"));
        }
        if burst.is_nan() || burst < 1.0 {
            return Err(Error::InvalidConfig("mean burst length must be at least 1"));
        }
        // Bursts are sojourns in the bad state: mean length 1/r. The
        // stationary share of the bad state, p/(p+r), is the loss rate.
        let r = 1.0 / burst;
        let p = r * loss / (1.0 - loss);
        Ok(GilbertElliott {
            p,
            r,
            loss_good: 0.0,
            loss_bad: 1.0,
            step: None,
        })
    }

    /// The same chain, which also moves once per `step` of time between
    /// datagrams.
    pub fn with_step(mut self, step: std::time::Duration) -> Self {
        self.step = Some(step);
        self
    }

    /// The probability of being in the bad state after `k` steps from
    /// `bad` (the chain's closed form: it forgets its start at the rate
    /// `1 - p - r` per step).
    fn bad_after(&self, bad: bool, k: u64) -> f64 {
        let share = self.bad_share();
        let decay = (1.0 - self.p - self.r).powi(i32::try_from(k).unwrap_or(i32::MAX));
        let start = if bad { 1.0 } else { 0.0 };
        share + (start - share) * decay
    }

    fn validate(&self) -> Result<(), Error> {
        if self.step == Some(std::time::Duration::ZERO) {
            return Err(Error::InvalidConfig(
                "a Gilbert-Elliott step must be positive",
            ));
        }
        let probability = |x: f64| (0.0..=1.0).contains(&x);
        if ![self.p, self.r, self.loss_good, self.loss_bad]
            .into_iter()
            .all(probability)
        {
            return Err(Error::InvalidConfig(
                "Gilbert-Elliott parameters must be probabilities",
            ));
        }
        if self.p + self.r == 0.0 {
            return Err(Error::InvalidConfig(
                "Gilbert-Elliott p and r cannot both be 0",
            ));
        }
        Ok(())
    }

    /// Stationary probability of the bad state: `p / (p + r)`.
    pub fn bad_share(&self) -> f64 {
        self.p / (self.p + self.r)
    }

    /// The long-run loss rate.
    pub fn mean_loss(&self) -> f64 {
        let bad = self.bad_share();
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }

    /// The mean length of a run of consecutive losses: `1 / (1 - q)`, where
    /// `q` is the probability that the datagram after a lost one is lost too.
    pub fn mean_burst_len(&self) -> f64 {
        let (bad, lg, lb) = (self.bad_share(), self.loss_good, self.loss_bad);
        let good = 1.0 - bad;
        let lost = good * lg + bad * lb;
        let both = good * lg * ((1.0 - self.p) * lg + self.p * lb)
            + bad * lb * (self.r * lg + (1.0 - self.r) * lb);
        1.0 / (1.0 - both / lost)
    }
}

impl LossModel {
    /// Checks that the parameters are probabilities.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            LossModel::Bernoulli { p } if !(0.0..=1.0).contains(p) => {
                Err(Error::InvalidConfig("Bernoulli loss must be a probability"))
            }
            LossModel::GilbertElliott(ge) => ge.validate(),
            _ => Ok(()),
        }
    }
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It arrives, after the link's own delay.
    Deliver,
    /// It arrives after this one-way delay (from a trace).
    DeliverAfter(std::time::Duration),
    /// It is lost.
    Drop,
}

/// A running loss model: the model plus its state and its random stream.
/// Same model, same seed: same sequence of fates.
#[derive(Debug, Clone)]
pub struct LossProcess {
    model: LossModel,
    bad: bool,
    next_in_trace: usize,
    rng: Pcg64Mcg,
    /// When the previous datagram passed, for a chain that steps in time.
    last: Option<std::time::Duration>,
}

impl LossProcess {
    /// Starts `model` (in the good state) with a seeded random stream.
    pub fn new(model: LossModel, seed: u64) -> Self {
        LossProcess {
            model,
            bad: false,
            next_in_trace: 0,
            rng: Pcg64Mcg::seed_from_u64(seed),
            last: None,
        }
    }

    /// Decides the fate of the next datagram, sent at `now` (any time
    /// base, as long as it only grows): a Gilbert-Elliott chain with a
    /// step first moves once per whole step since the previous datagram
    /// beyond the first.
    pub fn next_fate_at(&mut self, now: std::time::Duration) -> Fate {
        if let LossModel::GilbertElliott(ge) = &self.model
            && let Some(step) = ge.step
        {
            if let Some(last) = self.last {
                let steps = now.saturating_sub(last).as_nanos() / step.as_nanos().max(1);
                let idle = u64::try_from(steps).unwrap_or(u64::MAX).saturating_sub(1);
                if idle > 0 {
                    let bad = ge.bad_after(self.bad, idle);
                    self.bad = self.rng.random_bool(bad.clamp(0.0, 1.0));
                }
            }
            self.last = Some(now);
        }
        self.next_fate()
    }

    /// Decides the fate of the next datagram (a stepping chain moves for
    /// datagrams only, as if they came back to back).
    pub fn next_fate(&mut self) -> Fate {
        let lost = match &self.model {
            LossModel::None => false,
            LossModel::Bernoulli { p } => self.rng.random_bool(*p),
            LossModel::GilbertElliott(ge) => {
                let loss = if self.bad { ge.loss_bad } else { ge.loss_good };
                let lost = self.rng.random_bool(loss);
                let flip = if self.bad { ge.r } else { ge.p };
                if self.rng.random_bool(flip) {
                    self.bad = !self.bad;
                }
                lost
            }
            LossModel::Trace(trace) => {
                let delay = trace.fate(self.next_in_trace);
                self.next_in_trace += 1;
                return delay.map_or(Fate::Drop, Fate::DeliverAfter);
            }
        };
        if lost { Fate::Drop } else { Fate::Deliver }
    }
}
