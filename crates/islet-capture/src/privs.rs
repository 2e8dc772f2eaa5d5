//! Dropping root after the sockets are open, keeping only the capabilities still needed.
//!
//! A live sensor needs root (or CAP_NET_RAW + CAP_NET_ADMIN) to open AF_PACKET sockets, set
//! promiscuous mode and program tc. Once its sockets are open it keeps working with:
//! CAP_NET_ADMIN (tc filters added and removed while running; clsact cleanup at exit) and
//! CAP_NET_RAW (sending on the packet sockets it holds needs none, but reopening after a link
//! flap does). Everything else (file access as root, CAP_SYS_ADMIN, …) is given up.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// CAP_NET_ADMIN.
pub const CAP_NET_ADMIN: u32 = 12;
/// CAP_NET_RAW.
pub const CAP_NET_RAW: u32 = 13;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Who the process became.
#[derive(Debug, Clone)]
pub struct Dropped {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Names of the capabilities kept.
    pub kept: Vec<&'static str>,
}

fn cap_name(c: u32) -> &'static str {
    match c {
        CAP_NET_ADMIN => "CAP_NET_ADMIN",
        CAP_NET_RAW => "CAP_NET_RAW",
        _ => "?",
    }
}

/// Become `user` (its uid and primary gid, no supplementary groups), keeping `caps`
/// (permitted and effective) and nothing else. Must run before other threads start.
pub fn drop_to(user: &str, caps: &[u32]) -> io::Result<Dropped> {
    let c = CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name has a NUL"))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; read before other calls.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("user {user}: no such user"),
        ));
    }
    // SAFETY: non-null passwd entry.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let check = |r: libc::c_int, what: &str| -> io::Result<()> {
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
        }
        Ok(())
    };
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
            "PR_SET_KEEPCAPS",
        )?;
        check(libc::setgroups(0, std::ptr::null()), "setgroups")?;
        check(libc::setresgid(gid, gid, gid), "setresgid")?;
        check(libc::setresuid(uid, uid, uid), "setresuid")?;
    }
    let mut mask = 0u32;
    for c in caps {
        mask |= 1 << c;
    }
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask,
            permitted: mask,
            inheritable: 0,
        },
        CapData::default(),
    ];
    // SAFETY: capset with a v3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    check(r as libc::c_int, "capset")?;
    // SAFETY: plain prctl.
    unsafe {
        check(
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0),
            "PR_SET_KEEPCAPS",
        )?;
    }
    Ok(Dropped {
        user: user.to_owned(),
        uid,
        gid,
        kept: caps.iter().map(|c| cap_name(*c)).collect(),
    })
}

/// Whether `user` exists (so `drop_to` can become it).
pub fn user_exists(user: &str) -> bool {
    let Ok(c) = CString::new(user) else {
        return false;
    };
    // SAFETY: getpwnam with a valid C string; only the pointer is tested.
    !unsafe { libc::getpwnam(c.as_ptr()) }.is_null()
}

/// Whether this process holds `cap` in its effective set.
pub fn has_cap(cap: u32) -> bool {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header and room for two data words.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    r == 0 && data[0].effective & (1 << cap) != 0
}
