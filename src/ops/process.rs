//! The process as the kernel sees it, read from `/proc/self` when metrics are scraped.

/// Resident memory, in bytes: the second field of `/proc/self/statm`, in pages.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()?))
}

/// Open file descriptors: the entries of `/proc/self/fd` (less the one reading it).
pub fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some((entries.count() as u64).saturating_sub(1))
}

#[cfg(unix)]
fn page_size() -> Option<u64> {
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&size| size > 0)
}

#[cfg(not(unix))]
fn page_size() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_has_memory_and_files() {
        assert!(super::resident_bytes().is_some_and(|bytes| bytes > 0));
        assert!(super::open_fds().is_some_and(|fds| fds >= 3));
    }
}
