//! Scheduling hints for the engine's own threads (Linux; elsewhere they do nothing).
//!
//! The decision API answers on HTTP worker threads that share the machine's cores with
//! throughput work: the decision log writer and, on small machines, Postgres. Two per-thread
//! hints keep that work out of an answer's way (docs/decisions/0009):
//! - background threads lower their own nice value, so a woken worker outweighs them;
//! - HTTP workers ask the kernel's EEVDF scheduler (Linux 6.12 and later) for a short time
//!   slice. A woken task waits for the running one to use up at most the shortest slice among
//!   them, so a short slice on the workers bounds how long a woken worker waits for a core.
//!   Older kernels refuse the request (logged at debug level) or ignore it, which costs
//!   nothing.

use std::time::Duration;

use tracing::{debug, warn};

/// Raises the calling thread's nice value by `by` (capped at 19; Linux keeps one per thread).
/// Lowering a priority needs no privilege; should it fail all the same, the thread keeps its
/// priority, which is only slower for others.
pub fn lower_this_threads_priority(by: i32) {
    #[cfg(target_os = "linux")]
    {
        let Some(now) = this_threads_nice() else {
            warn!(error = %std::io::Error::last_os_error(), "cannot read this thread's priority");
            return;
        };
        let nice = now.saturating_add(by).min(19);
        // SAFETY: a plain system call on this thread's own id; no memory is shared with it.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, this_thread(), nice) };
        if r != 0 {
            warn!(error = %std::io::Error::last_os_error(), nice, "cannot lower this thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

/// Asks for `slice` as the calling thread's time slice, keeping its policy and nice value.
/// Returns whether the kernel accepted the request (a kernel before 6.12 may accept it and
/// ignore the slice).
pub fn request_time_slice(slice: Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(nice) = this_threads_nice() else {
            return false;
        };
        // SAFETY: `sched_attr` is plain data; zeroed is a valid value for every field.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<libc::sched_attr>() as u32;
        // Keep the thread's policy (normal or batch; a real-time policy ignores the slice).
        attr.sched_flags = libc::SCHED_FLAG_KEEP_POLICY as u64;
        attr.sched_nice = nice;
        // For the normal policies, `sched_runtime` is the requested slice (clamped by the
        // kernel to 0.1–100 ms).
        attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: the kernel reads `attr.size` bytes from a live, initialized struct.
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const _, 0) };
        if r != 0 {
            debug!(error = %std::io::Error::last_os_error(), ?slice,
                   "the kernel refused a time slice request; keeping its default");
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

/// This thread's nice value, or `None` if it cannot be read (-1 is a valid nice, so errno
/// tells a failure apart).
#[cfg(target_os = "linux")]
fn this_threads_nice() -> Option<i32> {
    // SAFETY: errno is this thread's own; getpriority only reads.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, this_thread());
        (nice != -1 || *libc::__errno_location() == 0).then_some(nice)
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
    fn a_thread_lowers_only_its_own_priority_relative_to_where_it_was() {
        let here = this_threads_nice().unwrap();
        let (before, after) = std::thread::spawn(|| {
            let before = this_threads_nice().unwrap();
            lower_this_threads_priority(7);
            (before, this_threads_nice().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(after, (before + 7).min(19));
        assert_eq!(
            this_threads_nice().unwrap(),
            here,
            "the test's own thread is untouched"
        );
        let capped = std::thread::spawn(|| {
            lower_this_threads_priority(100);
            this_threads_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(capped, 19);
    }

    #[test]
    fn a_slice_request_keeps_the_threads_nice_value() {
        std::thread::spawn(|| {
            lower_this_threads_priority(3);
            let lowered = this_threads_nice().unwrap();
            let taken = request_time_slice(Duration::from_micros(250));
            assert_eq!(this_threads_nice().unwrap(), lowered);
            let slice = sched_field("se.slice");
            let seen = crate::testing::require(
                "sched_slice",
                taken && slice.is_some(),
                "this kernel takes no time slice requests (Linux 6.12+) or shows no se.slice",
            );
            if seen {
                assert_eq!(slice, Some(250_000));
            }
        })
        .join()
        .unwrap();
    }
}
