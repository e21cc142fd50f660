//! Dropping an emulator ends its forwarder: no thread of it outlives it
//! (each would keep a TUN device, and with it a namespace, alive). Its own
//! test binary, so that no other emulator's threads are counted.

use std::{
    thread,
    time::{Duration, Instant},
};

use onetrip_netem::{Emulator, LinkConfig, Path};

/// The threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.starts_with(prefix))
        })
        .count()
}

/// Waits up to 5 s for `done`; fails saying `what` otherwise.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn dropping_the_emulator_ends_its_forwarder() {
    let emulator = Emulator::start(Path::symmetric(LinkConfig::with_delay(
        Duration::from_millis(1),
    )))
    .unwrap_or_else(|err| panic!("{err}"));
    // A thread takes its name once it runs.
    eventually("a writer per direction, and a reader", || {
        threads_named("netem-write") == 2 && threads_named("netem-read") == 1
    });
    drop(emulator);
    eventually("the forwarder's threads outlived the emulator", || {
        threads_named("netem-") == 0
    });
}
