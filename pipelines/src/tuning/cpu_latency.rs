//! CPU latency QoS (opt-in, `tuning.cpu_latency_qos_us`): while the engine runs, idle cores stay
//! in idle states that wake within the given time, rather than the deepest ones.
//!
//! An idle core that halts takes time to wake when a request arrives, and on a virtual machine a
//! halted vCPU is woken through the host: on the 2-vCPU machine of docs/benchmarks.md, that
//! wake-up was most of the decision API's p99 at 10,000 requests/s. A limit of 0 keeps idle cores
//! polling instead. The price is the machine's: idle cores keep spinning (power on bare metal,
//! the host's CPU on a VM), so it is for machines given over to the engine. The limit applies to
//! every core and to every program on the machine (Linux's PM QoS, `/dev/cpu_dma_latency`, the
//! interface `tuned`'s latency profiles use), and needs write access to that device, normally
//! root's. It acts through the cpuidle driver (`/sys/devices/system/cpu/cpuidle/current_driver`);
//! "poll" is what x86's drivers do at 0, and where no driver is loaded it changes nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

pub const DEVICE: &str = "/dev/cpu_dma_latency";
/// The kernel's own value, meaning no limit; a request above it would be no request at all.
const NO_LIMIT_US: u32 = 2_000_000_000;

/// A CPU latency limit in force. The kernel keeps it while the device stays open and drops it
/// when the file is closed, however the process ends: a crash leaves no setting behind.
#[derive(Debug)]
pub struct CpuLatencyLimit {
    _device: File,
}

#[derive(Debug, thiserror::Error)]
pub enum CpuLatencyError {
    #[error("a CPU latency limit of {0} µs is out of range (at most {NO_LIMIT_US})")]
    OutOfRange(u32),
    #[error(
        "{DEVICE} is not available here (not Linux, a kernel without CPU idle QoS, or a \
         container without the device); leave tuning.cpu_latency_qos_us unset"
    )]
    Unavailable(#[source] io::Error),
    #[error(
        "cannot hold a CPU latency limit through {DEVICE}: it needs write access to the device, \
         normally root's; or leave tuning.cpu_latency_qos_us unset"
    )]
    Device(#[source] io::Error),
}

/// Holds idle cores to a wake-up latency of at most `limit_us` until the returned value drops.
pub fn hold_cpu_latency_limit(limit_us: u32) -> Result<CpuLatencyLimit, CpuLatencyError> {
    if limit_us > NO_LIMIT_US {
        return Err(CpuLatencyError::OutOfRange(limit_us));
    }
    // The device takes a native-endian s32; NO_LIMIT_US fits.
    let value = limit_us as i32;
    let mut device = OpenOptions::new()
        .write(true)
        .open(DEVICE)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CpuLatencyError::Unavailable(e),
            _ => CpuLatencyError::Device(e),
        })?;
    device
        .write_all(&value.to_ne_bytes())
        .map_err(CpuLatencyError::Device)?;
    Ok(CpuLatencyLimit { _device: device })
}

/// The limit now in force on the machine: the lowest one held by any program, or the kernel's
/// default (2,000 s) when none is.
pub fn current_cpu_latency_limit_us() -> io::Result<i32> {
    let mut value = [0u8; 4];
    File::open(DEVICE)?.read_exact(&mut value)?;
    Ok(i32::from_ne_bytes(value))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_held_limit_is_in_force_until_it_drops() {
        // A limit of 7 µs shows only where nothing else holds one as low (tuned's latency
        // profiles hold 1–3 µs; the API test holds 9).
        let observable = current_cpu_latency_limit_us().is_ok_and(|now| now > 7);
        let held = hold_cpu_latency_limit(7);
        let why = match &held {
            Err(e) => e.to_string(),
            Ok(_) => "a CPU latency limit of 7 µs or less is already held here".into(),
        };
        if !crate::testing::require("cpu_latency", observable && held.is_ok(), &why) {
            return;
        }
        assert!(current_cpu_latency_limit_us().unwrap() <= 7);
        drop(held);
        assert!(current_cpu_latency_limit_us().unwrap() > 7);
    }

    #[test]
    fn a_limit_that_cannot_be_held_says_which_setting_to_change() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let missing = io::Error::from(io::ErrorKind::NotFound);
        for e in [
            CpuLatencyError::Device(denied),
            CpuLatencyError::Unavailable(missing),
        ] {
            assert!(e.to_string().contains("tuning.cpu_latency_qos_us"), "{e}");
        }
    }

    #[test]
    fn a_limit_beyond_the_kernels_default_is_refused() {
        for limit in [NO_LIMIT_US + 1, u32::MAX] {
            assert!(matches!(
                hold_cpu_latency_limit(limit),
                Err(CpuLatencyError::OutOfRange(l)) if l == limit
            ));
        }
    }
}
