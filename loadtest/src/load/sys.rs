//! The process limits the load generator needs: enough file descriptors for its connections
//! (10,000 idle ones plus the load's own).

use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, and the hard limit too if `want` is above
/// it and the process may (root); returns the soft limit now in force.
pub fn raise_fd_limit(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_max != libc::RLIM_INFINITY && lim.rlim_max < want {
        let higher = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        // SAFETY: `higher` is a valid rlimit; failure (no privilege) leaves the limits as they were.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &higher) } == 0 {
            return Ok(want);
        }
    }
    if lim.rlim_cur != lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above; a soft limit may always be raised up to the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_least_where_it_was() {
        let before = raise_fd_limit(0).unwrap();
        assert!(before >= 3);
        assert_eq!(raise_fd_limit(16).unwrap(), before);
    }
}
