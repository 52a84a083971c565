//! [`Processes`]: who this run is (machine, boot, process id) and whether another process of
//! the same machine still lives, so that a lease whose holder died on this machine is taken
//! over at once instead of after it lapses.
//!
//! The library never probes the system by itself: the caller supplies the answers (the CLI
//! reads Linux's machine id, boot id and `/proc`). The default, [`UnknownProcesses`], knows
//! nothing, so an embedding service opts in.

/// The holder identity written into leases, and a liveness probe for holders on this machine.
///
/// Contract: `host` names this machine and `boot_id` its current boot; both stable for the
/// process's life and distinct between machines and boots. `is_alive` answers for process
/// ids of this machine and boot only: `Some(false)` only when the process certainly does not
/// exist; `None` when it cannot tell (a lease is then waited for, never taken early).
pub trait Processes: Send + Sync + std::fmt::Debug {
    /// This machine's identity (e.g. `/etc/machine-id`), if known.
    fn host(&self) -> Option<String>;

    /// This machine's current boot (e.g. `/proc/sys/kernel/random/boot_id`), if known.
    fn boot_id(&self) -> Option<String> {
        None
    }

    /// This process's id.
    fn pid(&self) -> u32;

    /// Whether process `pid` of this machine exists; `None` when unknown.
    fn is_alive(&self, pid: u32) -> Option<bool>;
}

/// Knows nothing: no host, no boot, liveness unknown. Leases are then taken over only when
/// they lapse.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownProcesses;

impl Processes for UnknownProcesses {
    fn host(&self) -> Option<String> {
        None
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn is_alive(&self, _pid: u32) -> Option<bool> {
        None
    }
}
