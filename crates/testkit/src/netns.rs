//! Tests on the real kernel's TCP in a network namespace of their own
//! (Linux, root): the calling thread moves into a new namespace with its
//! loopback up and the sysctls the test sets, so nothing it does reaches
//! or depends on the host's network. What the kernel says of a socket
//! ([`syn_data_acked`]) and of the namespace's TCP ([`tcp_ext`]) is the
//! evidence.
//!
//! Threads and processes the thread starts afterwards inherit the
//! namespace; a tokio runtime built on it runs there whole.

use std::{io, os::fd::AsFd, process::Command};

use nix::sched::{CloneFlags, unshare};

/// Moves the calling thread into a new network namespace, brings its
/// loopback up and sets `net.ipv4.tcp_fastopen` there to `tcp_fastopen`.
///
/// # Errors
/// A message saying what failed and what the test needs (root, `ip` from
/// iproute2).
pub fn enter_private(tcp_fastopen: u32) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|err| {
        format!(
            "cannot create a network namespace (unshare(CLONE_NEWNET): {err}); this test needs root"
        )
    })?;
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|err| format!("cannot run `ip link set lo up` ({err}): install iproute2"))?;
    if !up.success() {
        return Err(format!("`ip link set lo up` failed: {up}"));
    }
    set_sysctl("net/ipv4/tcp_fastopen", &tcp_fastopen.to_string())
}

/// Writes a sysctl of the calling thread's network namespace
/// (`path` under `/proc/sys`).
///
/// # Errors
/// A message naming the sysctl.
pub fn set_sysctl(path: &str, value: &str) -> Result<(), String> {
    let file = format!("/proc/sys/{path}");
    std::fs::write(&file, value).map_err(|err| format!("cannot write {value} to {file}: {err}"))
}

/// A counter of the `TcpExt` line of the calling thread's namespace
/// (`/proc/thread-self/net/netstat`), such as `TCPFastOpenActive` (SYNs
/// whose data the server acknowledged) or `TCPFastOpenPassive` (SYNs whose
/// data a listener took).
///
/// # Errors
/// If the file cannot be read or has no such counter.
pub fn tcp_ext(name: &str) -> io::Result<u64> {
    let netstat = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    let mut lines = netstat.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let found = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(key, _)| *key == name);
        if let Some((_, value)) = found {
            return value
                .parse()
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no TcpExt counter {name}"),
    ))
}

/// `TCPI_OPT_SYN_DATA` (Linux include/uapi/linux/tcp.h): the SYN carried
/// data and the server acknowledged it.
const TCPI_OPT_SYN_DATA: u8 = 32;

/// Whether the data `socket`'s SYN carried was acknowledged by the server
/// (TCP Fast Open), from the kernel's `TCP_INFO` (`tcpi_options`).
///
/// # Errors
/// If `getsockopt` fails (`socket` is not a TCP socket, say).
#[allow(unsafe_code)]
pub fn syn_data_acked(socket: &impl AsFd) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>())
        .expect("tcp_info fits a socklen_t");
    // SAFETY: the descriptor is borrowed, so open, for the call; `info`
    // is writable memory of `len` bytes, and the kernel writes at most
    // `len` bytes into it and the length it wrote into `len`.
    let ret = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `tcp_info` is plain integers, so any bytes, the zeroes past
    // what the kernel wrote included, make a valid value.
    let info = unsafe { info.assume_init() };
    Ok(info.tcpi_options & TCPI_OPT_SYN_DATA != 0)
}
