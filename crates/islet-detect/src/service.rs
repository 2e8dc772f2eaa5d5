//! Per-flow and per-event detectors, run inside the workers: access to hypervisor management
//! ports, and remote execution over SMB named pipes.

/// DCE/RPC interfaces whose use over SMB means a remote service or task is being created:
/// ATSVC (`at`), SVCCTL (service control, as PsExec uses), ITaskSchedulerService (`schtasks`).
pub const REMOTE_EXEC_INTERFACES: [(&str, &str); 3] = [
    ("1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc"),
    ("367abb81-9844-35f1-ad32-98f038001003", "svcctl"),
    (
        "86d35949-83c9-4044-b424-db363231fd0c",
        "ITaskSchedulerService",
    ),
];

/// Named pipes of the same services.
pub const REMOTE_EXEC_PIPES: [&str; 3] = ["atsvc", "svcctl", "atsvc.pipe"];

/// Is this SMB request remote execution? Returns what gave it away: the pipe opened or the
/// DCE/RPC interface bound.
pub fn smb_remote_exec<'a>(
    filename: Option<&str>,
    interfaces: impl IntoIterator<Item = &'a str>,
) -> Option<&'static str> {
    for uuid in interfaces {
        if let Some((_, name)) = REMOTE_EXEC_INTERFACES
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(uuid))
        {
            return Some(name);
        }
    }
    let f = filename?;
    let base = f.rsplit(['\\', '/']).next().unwrap_or(f);
    REMOTE_EXEC_PIPES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(base))
        .copied()
}

/// Is a flow to `(proto, dport)` on a hypervisor management port?
pub fn hypervisor_port(ports: &[(u8, u16)], proto: u8, dport: u16) -> bool {
    ports.iter().any(|&(p, d)| p == proto && d == dport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_exec_by_pipe_or_interface() {
        assert_eq!(smb_remote_exec(Some("atsvc"), []), Some("atsvc"));
        assert_eq!(smb_remote_exec(Some("\\PIPE\\svcctl"), []), Some("svcctl"));
        assert_eq!(smb_remote_exec(Some("report.docx"), []), None);
        assert_eq!(
            smb_remote_exec(None, ["1FF70682-0A51-30E8-076D-740BE8CEE98B"]),
            Some("atsvc")
        );
        assert_eq!(
            smb_remote_exec(None, ["12345778-1234-abcd-ef00-0123456789ac"]),
            None
        );
    }
}
