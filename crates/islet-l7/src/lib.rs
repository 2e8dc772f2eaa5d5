//! islet-l7 — the application layer: what each flow *is*, found from its content.
//!
//! This first part is protocol detection: [`detect::probe`] looks at the first payload bytes of
//! each direction, as Suricata's and nDPI's probing parsers do, and names the protocol whatever
//! the port (DNS on 5353, TLS on 8443, SSH on 2222). Ports only break ties where the content
//! alone is ambiguous (DNS, NTP, Kerberos). Probes are pure functions over `&[u8]`; they never
//! allocate and answer "need more bytes" rather than guess on a short input.
//!
//! Full per-protocol parsers (one folder each) build on this.
#![forbid(unsafe_code)]

pub mod detect;
