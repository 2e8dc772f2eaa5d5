//! Who an address was: the console resolves both ends of each record against an inventory (the
//! same file format sensors take) at the flow's start, so a workload's labels are frozen as
//! they were then, even after the pod is gone. Without an inventory, an end is the identity the
//! sensor's policy named, else its address.

use islet_policy::identity::{Identity, Inventory};
use islet_policy::net::Cidr;
use islet_store::Endpoint;
use std::net::IpAddr;

/// Resolves addresses to endpoints and marks critical assets.
#[derive(Debug, Default)]
pub struct Identify {
    pub inventory: Option<Inventory>,
    /// Critical assets: address prefixes…
    pub critical_nets: Vec<Cidr>,
    /// …or identity keys (`namespace/name`) and label pairs (`key=value`).
    pub critical_names: Vec<String>,
}

impl Identify {
    /// `critical` holds CIDRs, addresses, `namespace/name` keys or `label=value` selectors.
    pub fn new(
        inventory: Option<Inventory>,
        critical: &[String],
    ) -> Result<Identify, islet_policy::net::CidrError> {
        let mut me = Identify {
            inventory,
            ..Identify::default()
        };
        for c in critical {
            if c.contains('/') && c.parse::<IpAddr>().is_err() && Cidr::parse(c).is_ok() {
                me.critical_nets.push(Cidr::parse(c)?);
            } else if let Ok(ip) = c.parse::<IpAddr>() {
                me.critical_nets.push(Cidr::host(ip));
            } else if !c.is_empty() {
                me.critical_names.push(c.clone());
            }
        }
        Ok(me)
    }

    /// The endpoint of `addr` at `ts_ns`; `named` is the identity the sensor's policy gave.
    pub fn endpoint(&self, addr: &str, ts_ns: i64, named: Option<&str>) -> Endpoint {
        let ip = addr.parse::<IpAddr>().ok();
        let mut e = Endpoint {
            key: addr.to_string(),
            kind: "ip".into(),
            name: addr.to_string(),
            ..Endpoint::default()
        };
        if let (Some(inv), Some(ip)) = (&self.inventory, ip) {
            let id = inv.resolve(ip, ts_ns);
            if let (Identity::Workload(_), Some(w)) = (id, inv.workload(id)) {
                e.key = format!("{}/{}", w.namespace, w.name);
                e.kind = w.kind.name().to_string();
                e.name = w.name.clone();
                e.namespace = w.namespace.clone();
                e.labels = w.labels.clone();
            }
        } else if let Some(n) = named
            && let Some((ns, name)) = n.split_once('/')
        {
            e.key = n.to_string();
            e.kind = "workload".into();
            e.name = name.to_string();
            e.namespace = ns.to_string();
        }
        e.critical = ip.is_some_and(|ip| self.critical_nets.iter().any(|c| c.contains(ip)))
            || self.critical_names.iter().any(|c| {
                *c == e.key
                    || c.split_once('=')
                        .is_some_and(|(k, v)| e.labels.get(k).is_some_and(|x| x == v))
            });
        e
    }
}
