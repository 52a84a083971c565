//! [`SystemProcesses`]: this process's identity in leases, and the liveness of other
//! processes on this machine, read from Linux's `/etc/machine-id`, `/proc` and the boot id.
//! Elsewhere (or when a file cannot be read) it knows nothing, and leases simply lapse.

use d1_backup_core::Processes;

/// Read once at start; `is_alive` looks at `/proc/<pid>`.
#[derive(Debug, Clone)]
pub(crate) struct SystemProcesses {
    /// The machine id and this process's pid namespace: process ids are only comparable
    /// within one namespace (a container has its own, and may share the image's machine id).
    host: Option<String>,
    /// The kernel's boot id: after a reboot, the same pid is another process.
    boot_id: Option<String>,
}

impl SystemProcesses {
    pub(crate) fn new() -> Self {
        let first_line = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
        };
        let machine = first_line("/etc/machine-id").or_else(|| first_line("/etc/hostname"));
        let namespace = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|link| link.display().to_string());
        let host = match (machine, namespace) {
            (Some(machine), Some(namespace)) => Some(format!("{machine} {namespace}")),
            _ => None,
        };
        Self {
            host,
            boot_id: first_line("/proc/sys/kernel/random/boot_id"),
        }
    }
}

impl Processes for SystemProcesses {
    fn host(&self) -> Option<String> {
        self.host.clone()
    }

    fn boot_id(&self) -> Option<String> {
        self.boot_id.clone()
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn is_alive(&self, pid: u32) -> Option<bool> {
        // Without /proc (not Linux), nothing is known.
        if self.host.is_none() || !std::path::Path::new("/proc/self").exists() {
            return None;
        }
        match std::fs::metadata(format!("/proc/{pid}")) {
            Ok(_) => Some(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(false),
            Err(_) => None,
        }
    }
}
