//! Scheduling hints for the engine's own threads (Linux; elsewhere they do nothing).
//!
//! The decision API answers on HTTP worker threads that share the machine's cores with
//! throughput work: the decision log writer and, on small machines, Postgres. Two per-thread
//! hints keep that work out of an answer's way (docs/decisions/0009):
//! - background threads lower their own nice value, so a woken worker outweighs them;
//! - HTTP workers ask the kernel's EEVDF scheduler (Linux 6.12 and later) for a short time
//!   slice. A woken task waits for the running one to use up at most the shortest slice among
//!   them, so a short slice on the workers bounds how long a woken worker waits for a core.
//!   Older kernels refuse or ignore the request, which costs nothing.

use std::time::Duration;

use tracing::{debug, warn};

/// Sets the calling thread's nice value (Linux keeps one per thread). Lowering a priority needs
/// no privilege; should it fail all the same, the thread keeps its priority, which is only
/// slower for others.
pub fn lower_this_threads_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call on this thread's own id; no memory is shared with it.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, this_thread(), nice) };
        if r != 0 {
            warn!(error = %std::io::Error::last_os_error(), nice, "cannot lower this thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Asks for `slice` as the calling thread's time slice, keeping its policy (normal) and nice
/// value. Returns whether the kernel took the request.
pub fn request_time_slice(slice: Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority only reads; errno is cleared first because -1 is a valid nice.
        let nice = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, this_thread())
        };
        // SAFETY: `sched_attr` is plain data; zeroed is a valid value for every field.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
        attr.sched_policy = libc::SCHED_OTHER as u32;
        attr.sched_nice = nice;
        // For the normal policy, `sched_runtime` is the requested slice (clamped by the kernel
        // to 0.1–100 ms).
        attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the kernel reads `attr.size` bytes from a live, initialized struct.
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) };
        if r != 0 {
            debug!(error = %std::io::Error::last_os_error(), ?slice,
                   "the kernel did not take a time slice request; keeping its default");
            return false;
        }
        true
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = slice;
        false
    }
}

#[cfg(target_os = "linux")]
fn this_thread() -> libc::id_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as libc::id_t }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A field of this thread's scheduler statistics (kernels built with scheduler debugging).
    fn sched_field(name: &str) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))?
            .rsplit(':')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    #[test]
    fn a_thread_lowers_only_its_own_priority() {
        let own = std::thread::spawn(|| {
            lower_this_threads_priority(7);
            // SAFETY: getpriority only reads.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, this_thread()) }
        })
        .join()
        .unwrap();
        assert_eq!(own, 7);
        // SAFETY: as above.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, this_thread()) };
        assert_ne!(here, 7, "the test's own thread is untouched");
    }

    #[test]
    fn a_slice_request_keeps_the_threads_nice_value() {
        std::thread::spawn(|| {
            lower_this_threads_priority(3);
            let taken = request_time_slice(Duration::from_micros(250));
            // SAFETY: getpriority only reads.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, this_thread()) };
            assert_eq!(nice, 3);
            if taken {
                if let Some(slice) = sched_field("se.slice") {
                    assert_eq!(slice, 250_000);
                }
            }
        })
        .join()
        .unwrap();
    }
}
