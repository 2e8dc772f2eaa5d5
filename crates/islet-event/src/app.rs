//! Application protocols, named as Suricata names them in `app_proto`.

/// An application-layer protocol identified on a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum AppProto {
    /// Nothing identified yet (no payload, or still probing).
    #[default]
    Unknown,
    /// Payload was seen but no protocol matched it.
    Failed,
    Http,
    Tls,
    Dns,
    Ssh,
    Smb,
    Dcerpc,
    Krb5,
    Rdp,
    Ntp,
    Quic,
    Ftp,
    Smtp,
    Dhcp,
    Snmp,
    Sip,
    Http2,
    Imap,
    Pop3,
    Mqtt,
    Ldap,
    Rfb,
    Nfs,
    Tftp,
}

impl AppProto {
    /// The value Suricata writes in `app_proto`, or `None` for [`AppProto::Unknown`].
    pub const fn name(self) -> Option<&'static str> {
        use AppProto::*;
        Some(match self {
            Unknown => return None,
            Failed => "failed",
            Http => "http",
            Tls => "tls",
            Dns => "dns",
            Ssh => "ssh",
            Smb => "smb",
            Dcerpc => "dcerpc",
            Krb5 => "krb5",
            Rdp => "rdp",
            Ntp => "ntp",
            Quic => "quic",
            Ftp => "ftp",
            Smtp => "smtp",
            Dhcp => "dhcp",
            Snmp => "snmp",
            Sip => "sip",
            Http2 => "http2",
            Imap => "imap",
            Pop3 => "pop3",
            Mqtt => "mqtt",
            Ldap => "ldap",
            Rfb => "rfb",
            Nfs => "nfs",
            Tftp => "tftp",
        })
    }

    /// A protocol was identified (neither unknown nor failed).
    pub const fn is_known(self) -> bool {
        !matches!(self, AppProto::Unknown | AppProto::Failed)
    }
}
