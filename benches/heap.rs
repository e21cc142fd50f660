//! A heap profiler for the idle bench: a global allocator that counts the
//! bytes in use and, while a [`Recording`] runs, remembers where each
//! allocation made during it was made, so that what stays allocated can be
//! told apart by component ([`Recording::finish`]).
//!
//! A component is the crate of the innermost frame that belongs to one of
//! the stack's layers (yamux, Noise, multistream-select, ...): an
//! allocation that yamux makes through `Vec` or `futures` is yamux's. A
//! tokio task's allocation is the whole future the task runs, so it is
//! reported as the tasks of whoever spawned it.
//!
//! ```no_run
//! use onetrip_bench::heap::{self, Profiler};
//!
//! #[global_allocator]
//! static GLOBAL: Profiler = Profiler;
//!
//! let recording = heap::Recording::start();
//! let kept = vec![0u8; 4096];
//! let report = recording.finish(1);
//! println!("{} B in use; by component: {:?}", heap::in_use(), report.components);
//! # drop(kept);
//! ```

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    collections::{BTreeMap, HashMap},
    ffi::c_void,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
};

use backtrace::Backtrace;

/// The system allocator, counting the bytes in use and recording
/// allocation sites while a [`Recording`] runs.
#[derive(Debug)]
pub struct Profiler;

/// Bytes handed out and not yet freed, the profiler's own bookkeeping
/// excluded.
static IN_USE: AtomicI64 = AtomicI64::new(0);

/// Whether allocations are being recorded.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// The allocations recorded and still live, by address: size and the
/// unresolved stack of their site.
static SITES: Mutex<Option<HashMap<usize, Site>>> = Mutex::new(None);

struct Site {
    size: usize,
    backtrace: Backtrace,
}

thread_local! {
    /// Set while this thread runs the profiler's own bookkeeping, whose
    /// allocations are neither counted nor recorded.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as the profiler's own bookkeeping, unless this thread is
/// already inside it (or is being torn down).
fn bookkeeping(f: impl FnOnce()) {
    let entered = INSIDE
        .try_with(|inside| !inside.replace(true))
        .unwrap_or(false);
    if entered {
        f();
        let _ = INSIDE.try_with(|inside| inside.set(false));
    }
}

fn inside() -> bool {
    INSIDE.try_with(Cell::get).unwrap_or(true)
}

fn sites() -> std::sync::MutexGuard<'static, Option<HashMap<usize, Site>>> {
    SITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Profiler {
    fn allocated(ptr: *mut u8, size: usize) {
        if ptr.is_null() || inside() {
            return;
        }
        IN_USE.fetch_add(size as i64, Ordering::Relaxed);
        if RECORDING.load(Ordering::Relaxed) {
            bookkeeping(|| {
                let backtrace = Backtrace::new_unresolved();
                if let Some(sites) = sites().as_mut() {
                    sites.insert(ptr as usize, Site { size, backtrace });
                }
            });
        }
    }

    fn freed(ptr: *mut u8, size: usize) {
        if inside() {
            return;
        }
        IN_USE.fetch_sub(size as i64, Ordering::Relaxed);
        if RECORDING.load(Ordering::Relaxed) {
            bookkeeping(|| {
                if let Some(sites) = sites().as_mut() {
                    sites.remove(&(ptr as usize));
                }
            });
        }
    }
}

// SAFETY: every call goes to `System` with the caller's arguments; the
// bookkeeping around it never touches the memory handed out.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Profiler {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        Self::allocated(ptr, layout.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        Self::allocated(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::freed(ptr, layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // A grown buffer counts where it was grown.
            Self::freed(ptr, layout.size());
            Self::allocated(new, new_size);
        }
        new
    }
}

/// Heap bytes in use now (with [`Profiler`] as the global allocator).
pub fn in_use() -> i64 {
    IN_USE.load(Ordering::Relaxed)
}

/// Records the sites of the allocations made from its start; one at a
/// time.
#[derive(Debug)]
pub struct Recording(());

impl Recording {
    /// Starts recording.
    ///
    /// # Panics
    /// If another recording runs.
    pub fn start() -> Self {
        bookkeeping(|| {
            let mut sites = sites();
            assert!(sites.is_none(), "one recording at a time");
            *sites = Some(HashMap::new());
        });
        RECORDING.store(true, Ordering::SeqCst);
        Recording(())
    }

    /// Stops recording: what is still allocated of the allocations made
    /// during the recording, by component and, for the `sites` largest
    /// call stacks, by site.
    pub fn finish(self, sites: usize) -> Report {
        RECORDING.store(false, Ordering::SeqCst);
        let mut report = Report::default();
        bookkeeping(|| {
            let live = self::sites().take().unwrap_or_default();
            report = Report::of(&live, sites);
        });
        report
    }
}

/// Live bytes by where they were allocated.
#[derive(Debug, Default)]
pub struct Report {
    /// Bytes by component, largest first.
    pub components: Vec<(String, u64)>,
    /// The largest call stacks: bytes, allocations, and the stack's
    /// frames (innermost first, from the first frame outside the
    /// allocator and the standard library).
    pub sites: Vec<(u64, u64, Vec<String>)>,
}

/// Frames kept to name a site.
const SITE_FRAMES: usize = 6;

impl Report {
    fn of(live: &HashMap<usize, Site>, sites: usize) -> Self {
        let mut names = HashMap::<usize, Option<String>>::new();
        let mut by_component = BTreeMap::<String, u64>::new();
        for site in live.values() {
            let mut components = site.backtrace.frames().iter().filter_map(|frame| {
                names
                    .entry(frame.ip() as usize)
                    .or_insert_with(|| component_at(frame.ip()))
                    .clone()
            });
            let component = match components.next() {
                // A task's future: whoever spawned it.
                Some(task) if task == TASKS => match components.find(|c| c != TASKS) {
                    Some(spawner) => format!("{spawner}: its tasks"),
                    None => task,
                },
                Some(component) => component,
                None => "other".to_owned(),
            };
            *by_component.entry(component).or_default() += site.size as u64;
        }
        let mut components: Vec<(String, u64)> = by_component.into_iter().collect();
        components.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Report {
            components,
            sites: if sites == 0 {
                Vec::new()
            } else {
                largest_sites(live, sites)
            },
        }
    }
}

/// The `n` call stacks holding the most live bytes.
fn largest_sites(live: &HashMap<usize, Site>, n: usize) -> Vec<(u64, u64, Vec<String>)> {
    let mut frames = HashMap::<usize, Vec<String>>::new();
    let mut by_stack = HashMap::<Vec<String>, (u64, u64)>::new();
    for site in live.values() {
        let stack: Vec<String> = site
            .backtrace
            .frames()
            .iter()
            .flat_map(|frame| {
                frames
                    .entry(frame.ip() as usize)
                    .or_insert_with(|| symbols_at(frame.ip()))
                    .clone()
            })
            .filter(|name| !is_plumbing(name))
            .take(SITE_FRAMES)
            .collect();
        let entry = by_stack.entry(stack).or_default();
        entry.0 += site.size as u64;
        entry.1 += 1;
    }
    let mut sites: Vec<_> = by_stack
        .into_iter()
        .map(|(stack, (bytes, count))| (bytes, count, stack))
        .collect();
    sites.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
    sites.truncate(n);
    sites
}

/// The names of the symbols at `ip`, inlined ones first, without their
/// hashes.
fn symbols_at(ip: *mut c_void) -> Vec<String> {
    let mut names = Vec::new();
    backtrace::resolve(ip, |symbol| {
        if let Some(name) = symbol.name() {
            names.push(format!("{name:#}"));
        }
    });
    names
}

/// Frames that say nothing about who allocated: the profiler, the
/// allocator and the standard library's containers.
fn is_plumbing(name: &str) -> bool {
    let path = name.trim_start_matches(['<', '&']);
    [
        "backtrace::",
        "alloc::",
        "core::",
        "std::",
        "hashbrown::",
        "__rust",
        module_path!(),
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

/// The component of a tokio task's allocation: the future it runs.
const TASKS: &str = "tokio tasks";

/// The component of the innermost symbol at `ip` that belongs to one
/// (inlined frames first), if any.
fn component_at(ip: *mut c_void) -> Option<String> {
    let mut found = None;
    backtrace::resolve(ip, |symbol| {
        if found.is_none() {
            found = symbol
                .name()
                .and_then(|name| component(&name.to_string()))
                .map(str::to_owned);
        }
    });
    found
}

/// The component a demangled symbol belongs to, by its crate; `None` for
/// the standard library, the allocator's callers and helper crates (tokio's
/// I/O utilities among them), whose allocations belong to whoever called
/// them.
fn component(symbol: &str) -> Option<&'static str> {
    let path = symbol.trim_start_matches(['<', '&', '*']);
    let path = path.strip_prefix("mut ").unwrap_or(path);
    if path.starts_with(module_path!()) {
        // The profiler's own frames.
        return None;
    }
    // A v0 symbol names the crate with its disambiguator: `yamux[1a2b]`.
    let krate = path.split("::").next()?.split('[').next()?;
    Some(match krate {
        "onetrip_noise" | "snow" => "Noise",
        "rustls" | "tokio_rustls" | "onetrip_tls" => "TLS (rustls)",
        "yamux" | "libp2p_yamux" => "yamux",
        "onetrip_multistream" | "multistream_select" => "multistream-select",
        "quinn" | "quinn_proto" | "quinn_udp" | "onetrip_quic" | "libp2p_quic" => "QUIC (quinn)",
        "ring" | "aws_lc_rs" | "ed25519_dalek" | "x25519_dalek" | "curve25519_dalek" => {
            "cryptography"
        }
        "tokio"
            if ["tokio::runtime::task", "tokio::task"]
                .iter()
                .any(|p| path.starts_with(p)) =>
        {
            TASKS
        }
        "tokio"
            if ["tokio::net", "tokio::runtime::io"]
                .iter()
                .any(|p| path.starts_with(p)) =>
        {
            "sockets (tokio)"
        }
        "mio" | "socket2" => "sockets (tokio)",
        "onetrip_stack" => "onetrip connection",
        "onetrip_bench" => "the bench's server and client",
        _ if krate.starts_with("libp2p") => "rust-libp2p",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::component;

    #[test]
    fn symbols_name_their_component() {
        assert_eq!(
            component("<yamux::connection::Connection<T> as core::fmt::Debug>::fmt"),
            Some("yamux")
        );
        assert_eq!(
            component("onetrip_noise::frame::InputBuffer::spare"),
            Some("Noise")
        );
        assert_eq!(
            component("tokio::runtime::task::core::Cell<T,S>::new"),
            Some(super::TASKS)
        );
        assert_eq!(
            component("<&mut T as tokio::io::AsyncRead>::poll_read"),
            None
        );
        assert_eq!(component("alloc::raw_vec::finish_grow"), None);
        assert_eq!(
            component("<quinn_proto[0123abcd]::connection::Connection>::new"),
            Some("QUIC (quinn)")
        );
        assert_eq!(component("onetrip_bench::heap::Profiler::allocated"), None);
    }
}
