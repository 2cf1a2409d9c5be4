//! The one module with `unsafe`: thin, audited wrappers over syscalls that monoio does not offer.

use std::os::fd::AsRawFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// The peer closed (EOF) or the socket is in error.
    Closed,
    /// Bytes are waiting to be read.
    Data,
    /// Nothing yet (a spurious readiness).
    Nothing,
}

/// Looks at a socket's receive queue without consuming it and without blocking.
pub fn peek(sock: &impl AsRawFd) -> Peek {
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid, writable one-byte buffer for the duration of the call, and
    // `recv` with MSG_PEEK|MSG_DONTWAIT neither retains the pointer nor blocks. An invalid fd
    // only makes recv return -1 (EBADF), which we report as Closed.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Peek::Closed,
        n if n > 0 => Peek::Data,
        _ => match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Peek::Nothing,
            _ => Peek::Closed,
        },
    }
}

/// CPU time this process has used, in microseconds (for load-test reports and /metrics).
pub fn process_cpu_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_PROCESS_CPUTIME_ID is always valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Shuts a listening socket down so a pending `accept` returns with an error and the kernel
/// stops queueing connections for it: how a draining shard stops accepting without cancelling
/// an in-flight io_uring accept (which can leak an already-accepted socket).
pub fn shutdown_listener(fd: std::os::fd::RawFd) {
    // SAFETY: shutdown(2) on an fd we own has no memory effects; on a stale fd it fails with
    // EBADF/ENOTCONN, which is harmless here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// Frees what this thread's allocator heap holds but no longer uses, returning it to the OS.
/// Called by an idle shard, on its own thread.
pub fn allocator_collect() {
    // SAFETY: mimalloc's `mi_collect` only touches the calling thread's heap and takes no
    // pointers; it is safe to call at any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Takes an exclusive advisory lock on `file` without waiting; false when another process
/// holds it. Released when the file is closed.
pub fn try_lock(file: &std::fs::File) -> bool {
    // SAFETY: flock(2) on a descriptor the caller owns has no memory effects; a bad fd only
    // makes it fail, reported as not locked.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}
