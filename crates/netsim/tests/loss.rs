//! Loss models against their closed forms, over 10^6 datagrams.

use onetrip_netsim::{Fate, GilbertElliott, LossModel, LossProcess};

const N: usize = 1_000_000;

/// Measured loss rate and mean length of runs of consecutive losses.
fn measure(model: LossModel, seed: u64) -> (f64, f64) {
    let mut process = LossProcess::new(model, seed);
    let (mut lost, mut bursts, mut previous_lost) = (0usize, 0usize, false);
    for _ in 0..N {
        let is_lost = process.next_fate() == Fate::Drop;
        if is_lost {
            lost += 1;
            if !previous_lost {
                bursts += 1;
            }
        }
        previous_lost = is_lost;
    }
    (lost as f64 / N as f64, lost as f64 / bursts.max(1) as f64)
}

fn assert_close(measured: f64, expected: f64, relative: f64, what: &str) {
    let error = (measured - expected).abs() / expected;
    println!(
        "{what}: measured {measured:.5}, closed form {expected:.5}, tolerance {:.1} %",
        relative * 100.0
    );
    assert!(
        error <= relative,
        "{what}: measured {measured:.5}, closed form {expected:.5} (off by {:.2} %, tolerance {:.1} %)",
        error * 100.0,
        relative * 100.0
    );
}

/// Four standard errors, relative, for statistics over `bursts` loss
/// bursts. Losses come in bursts of geometric length (coefficient of
/// variation near 1), so the loss count varies like a compound Poisson sum:
/// relative standard error about sqrt(2 / bursts) for the loss rate, and
/// below that for the mean burst length. The runs are seeded: the bound is
/// honest rather than a guard against flakes.
fn tolerance(loss: f64, burst: f64) -> f64 {
    let bursts = N as f64 * loss / burst;
    4.0 * (2.0 / bursts).sqrt()
}

#[test]
fn gilbert_matches_closed_form() {
    for (loss, burst) in [(0.10, 3.0), (0.05, 1.5), (0.01, 8.0)] {
        let ge = GilbertElliott::with_mean_loss(loss, burst).unwrap();
        assert_close(ge.mean_loss(), loss, 1e-9, "closed-form loss");
        assert_close(ge.mean_burst_len(), burst, 1e-9, "closed-form burst");
        let (measured_loss, measured_burst) = measure(LossModel::GilbertElliott(ge), 7);
        let tolerance = tolerance(loss, burst);
        assert_close(measured_loss, loss, tolerance, "loss rate");
        assert_close(measured_burst, burst, tolerance, "burst length");
    }
}

#[test]
fn four_parameter_gilbert_elliott_matches_closed_form() {
    let ge = GilbertElliott {
        p: 0.02,
        r: 0.25,
        loss_good: 0.005,
        loss_bad: 0.6,
        step: None,
    };
    let (loss, burst) = measure(LossModel::GilbertElliott(ge), 11);
    let tolerance = tolerance(ge.mean_loss(), ge.mean_burst_len());
    assert_close(loss, ge.mean_loss(), tolerance, "loss rate");
    assert_close(burst, ge.mean_burst_len(), tolerance, "burst length");
    // A memoryless model with the same loss rate would have much shorter
    // bursts: the test tells the two apart.
    assert!(ge.mean_burst_len() > 1.5 / (1.0 - ge.mean_loss()));
}

#[test]
fn bernoulli_matches_closed_form() {
    let p = 0.05;
    let (loss, burst) = measure(LossModel::Bernoulli { p }, 3);
    // Independent losses: runs are geometric with mean 1 / (1 - p).
    let tolerance = tolerance(p, 1.0 / (1.0 - p));
    assert_close(loss, p, tolerance, "loss rate");
    assert_close(burst, 1.0 / (1.0 - p), tolerance, "burst length");
}

#[test]
fn same_seed_same_losses() {
    let model = LossModel::GilbertElliott(GilbertElliott::with_mean_loss(0.1, 3.0).unwrap());
    let fates = |seed| {
        let mut process = LossProcess::new(model.clone(), seed);
        (0..10_000).map(|_| process.next_fate()).collect::<Vec<_>>()
    };
    assert_eq!(fates(42), fates(42));
    assert_ne!(fates(42), fates(43));
}

#[test]
fn invalid_parameters_are_refused() {
    assert!(GilbertElliott::with_mean_loss(1.0, 2.0).is_err());
    assert!(GilbertElliott::with_mean_loss(0.1, 0.5).is_err());
    assert!(LossModel::Bernoulli { p: 1.5 }.validate().is_err());
    let stuck = GilbertElliott {
        p: 0.0,
        r: 0.0,
        loss_good: 0.0,
        loss_bad: 1.0,
        step: None,
    };
    assert!(LossModel::GilbertElliott(stuck).validate().is_err());
}

/// A chain that steps in time: a burst ends in time too, not only when
/// enough datagrams have passed; datagrams back to back see the same chain
/// as without a step.
#[test]
fn a_stepping_chain_ends_its_bursts_in_time() {
    use std::time::Duration;

    let ge = GilbertElliott::with_mean_loss(0.05, 4.0).unwrap();
    let stepping = ge.with_step(Duration::from_millis(1));
    // Back to back (one step apart): the same sequence as per datagram.
    let mut plain = LossProcess::new(LossModel::GilbertElliott(ge), 5);
    let mut timed = LossProcess::new(LossModel::GilbertElliott(stepping), 5);
    for n in 0..10_000u64 {
        assert_eq!(
            plain.next_fate(),
            timed.next_fate_at(Duration::from_millis(n))
        );
    }
    // A sparse sender (one datagram per second, as a backed-off timer)
    // sees the stationary loss rate, not bursts frozen in place: after
    // each loss, the next datagram is lost about as often as any.
    let mut sparse = LossProcess::new(LossModel::GilbertElliott(stepping), 9);
    let fates: Vec<bool> = (0..20_000u64)
        .map(|n| sparse.next_fate_at(Duration::from_secs(n)) == Fate::Drop)
        .collect();
    let lost = fates.iter().filter(|&&l| l).count() as f64 / fates.len() as f64;
    let after_loss: Vec<bool> = fates.windows(2).filter(|w| w[0]).map(|w| w[1]).collect();
    let again = after_loss.iter().filter(|&&l| l).count() as f64 / after_loss.len() as f64;
    assert!((0.03..0.07).contains(&lost), "{lost}");
    assert!(again < 0.15, "a loss after a loss: {again}");
}
