//! A worker's segmentation state: each new flow's verdict (identities frozen at its first
//! packet), its refinement when L7 metadata arrives, a `policy_violation` alert for each
//! denied flow, and the verdict carried into the flow's EVE record. The engine is shared
//! read-only through an `ArcSwap`, cached per worker, so a policy reload swaps atomically and
//! no lookup waits. A flow's verdict is a 20-byte [`Judged`] kept in the flow table's own
//! entry (no side map), and its provenance is written from the engine's strings when the
//! flow's record is (no allocation per flow).

use crate::names::{Learned, MAX_NAMES_PER_ADDR, NameCache};
use arc_swap::ArcSwap;
use islet_event::alert::write_alert;
use islet_event::eve::EveOptions;
use islet_event::eve_proto::EventContext;
use islet_event::proto::AppEvent;
use islet_event::{Alert, PolicyNote};
use islet_policy::engine::{FlowFacts, L7Facts, Reason, dir_name};
use islet_policy::ir::{Action, Direction};
use islet_policy::{Engine, Identity, Verdict};
use std::fmt::Write as _;
use std::sync::Arc;

/// `alert.signature_id` of a policy violation.
pub const POLICY_SIGNATURE_ID: u32 = 9_200_001;

/// The policy a sensor judges with.
#[derive(Clone, Debug)]
pub struct PolicyRuntime {
    pub engine: Arc<ArcSwap<Engine>>,
    /// Inline enforcement (drops happen); false on a tap or capture files.
    pub enforced: bool,
    /// Addresses with DNS-learned names each worker keeps (`policy.names_max`).
    pub names_max: usize,
    /// Seconds a learned name holds at least (`policy.dns_min_ttl`).
    pub dns_min_ttl: u64,
    /// A reload also re-judges open flows at their next packet (the live sensor: a flow the
    /// new policy denies is cut, not only new ones). Off, flows keep the verdict they started
    /// with and its provenance.
    pub rejudge: bool,
}

impl PolicyRuntime {
    pub fn fixed(e: Engine) -> PolicyRuntime {
        let d = crate::config::PolicySection::default();
        PolicyRuntime {
            engine: Arc::new(ArcSwap::from_pointee(e)),
            enforced: false,
            names_max: d.names_max,
            rejudge: false,
            dns_min_ttl: d.dns_min_ttl,
        }
    }

    /// Put `e` in force: one atomic pointer swap. Workers see it at their next new flow;
    /// flows already judged keep their verdict and its provenance (the engine that gave it
    /// stays alive until its last such flow ends). Returns the engine replaced.
    pub fn reload(&self, e: Engine) -> Arc<Engine> {
        self.engine.swap(Arc::new(e))
    }
}

type EngineCache = arc_swap::Cache<Arc<ArcSwap<Engine>>, Arc<Engine>>;

/// A flow's verdict, packed into the flow table's entry: identities, deciding rule and
/// audit rule as indices, and the slot of the engine that gave it in [`Engines`], so its
/// provenance is written from that engine's strings even if a reload swapped the policy
/// since. `Default` is "not judged".
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Judged {
    src: u32,
    dst: u32,
    /// The deciding rule (`Reason::Rule`).
    rule: u32,
    /// The audit rule that matched, or `NO_RULE`.
    audit: u32,
    /// 0: not judged; else 1 + the action.
    action: u8,
    /// Reason kind (bits 0–1: rule, implicit deny, not isolated), direction (bit 2: egress),
    /// decided by L7 metadata (bit 3).
    flags: u8,
    slot: u16,
}

/// A flow's policy state in its flow-table entry: the packed verdict, and the names learned
/// from DNS for ends the inventory does not know (boxed: most flows have none).
#[derive(Debug, Default)]
pub(crate) struct FlowJudgement {
    j: Judged,
    names: Option<Box<DerivedNames>>,
}

impl FlowJudgement {
    /// The flow's verdict is deny (at L3/L4, or refined by L7 metadata).
    pub(crate) fn denied(&self) -> bool {
        self.j.is_judged() && self.j.verdict().action == Action::Deny
    }

    /// The flow has a verdict.
    pub(crate) fn judged(&self) -> bool {
        self.j.is_judged()
    }
}

/// Names an end had when its flow started (frozen with its identity).
#[derive(Debug, Default)]
struct DerivedNames {
    src: Option<String>,
    dst: Option<String>,
}

const NO_RULE: u32 = u32::MAX;
const L7_BIT: u8 = 8;
/// Most engines one worker holds at once (the one in force and those older flows were judged
/// by); past it, new flows share the newest slot's engine.
const MAX_ENGINES: usize = 1024;

fn pack_identity(i: Identity) -> u32 {
    match i {
        Identity::Workload(n) => n.min(u32::MAX - 3),
        Identity::Host => u32::MAX - 2,
        Identity::Cluster => u32::MAX - 1,
        Identity::World => u32::MAX,
    }
}

fn unpack_identity(n: u32) -> Identity {
    match n {
        u32::MAX => Identity::World,
        x if x == u32::MAX - 1 => Identity::Cluster,
        x if x == u32::MAX - 2 => Identity::Host,
        x => Identity::Workload(x),
    }
}

impl Judged {
    fn pack(v: &Verdict, slot: u16, l7: bool) -> Judged {
        let dir_bit = |d: Direction| if d == Direction::Egress { 4 } else { 0 };
        let (rule, kind) = match v.reason {
            Reason::Rule(r, d) => (r, dir_bit(d)),
            Reason::ImplicitDeny(d) => (NO_RULE, 1 | dir_bit(d)),
            Reason::NotIsolated => (NO_RULE, 2),
        };
        Judged {
            src: pack_identity(v.src),
            dst: pack_identity(v.dst),
            rule,
            audit: v.audit.unwrap_or(NO_RULE),
            action: 1 + v.action as u8,
            flags: kind | if l7 { L7_BIT } else { 0 },
            slot,
        }
    }

    fn is_judged(&self) -> bool {
        self.action != 0
    }

    fn verdict(&self) -> Verdict {
        let dir = if self.flags & 4 != 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        Verdict {
            action: match self.action {
                1 => Action::Allow,
                2 => Action::Deny,
                3 => Action::Audit,
                _ => Action::Pass,
            },
            reason: match self.flags & 3 {
                0 => Reason::Rule(self.rule, dir),
                1 => Reason::ImplicitDeny(dir),
                _ => Reason::NotIsolated,
            },
            audit: (self.audit != NO_RULE).then_some(self.audit),
            src: unpack_identity(self.src),
            dst: unpack_identity(self.dst),
        }
    }

    fn l7(&self) -> bool {
        self.flags & L7_BIT != 0
    }
}

/// The engines a worker's live flows were judged by: the current one and any a reload
/// replaced while flows it judged are still open. A slot is freed when its last flow ends,
/// so a flow holds an index rather than a reference count shared with other workers.
#[derive(Debug, Default)]
struct Engines {
    slots: Vec<Option<(Arc<Engine>, u64)>>,
    current: u16,
}

impl Engines {
    /// The slot of `e` (the engine in force now), taking one reference for a new flow.
    fn acquire(&mut self, e: &Arc<Engine>) -> u16 {
        let cur = self.current as usize;
        match self.slots.get_mut(cur) {
            Some(Some((have, n))) if Arc::ptr_eq(have, e) => {
                *n += 1;
                return self.current;
            }
            Some(Some((_, 0))) => self.slots[cur] = None,
            _ => {}
        }
        let free = self.slots.iter().position(Option::is_none);
        let i = match free {
            Some(i) => i,
            None if self.slots.len() < MAX_ENGINES => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            // Every slot holds live flows of an older engine: share the newest slot.
            None => {
                if let Some(Some((_, n))) = self.slots.get_mut(cur) {
                    *n += 1;
                }
                return self.current;
            }
        };
        self.slots[i] = Some((Arc::clone(e), 1));
        self.current = u16::try_from(i).unwrap_or(u16::MAX);
        self.current
    }

    fn get(&self, slot: u16) -> &Engine {
        match self.slots.get(slot as usize) {
            Some(Some((e, _))) => e,
            // Every live flow holds its slot: not reached.
            _ => unreachable!("policy engine slot {slot} released while in use"),
        }
    }

    /// A flow judged by `slot` has ended. The engine stays until [`Engines::sweep`], so the
    /// flow's record can still be written from it.
    fn release(&mut self, slot: u16) {
        if let Some(Some((_, n))) = self.slots.get_mut(slot as usize) {
            *n = n.saturating_sub(1);
        }
    }

    /// Drop `slot`'s engine if no flow holds it and it is no longer in force.
    fn sweep(&mut self, slot: u16) {
        if slot != self.current
            && let Some(s) = self.slots.get_mut(slot as usize)
            && s.as_ref().is_some_and(|(_, n)| *n == 0)
        {
            *s = None;
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct PolicyState {
    enforced: bool,
    rejudge: bool,
    pub(crate) rejudged: u64,
    cache: Option<EngineCache>,
    engines: Engines,
    /// The identity names and reason of the verdict being written, formatted into a reused
    /// buffer: a verdict on every flow record costs no allocation.
    text: String,
    /// The slot of the last flow written, swept before the next.
    swept: Option<u16>,
    names: NameCache,
    pub(crate) denied: u64,
    pub(crate) alerts: u64,
}

impl PolicyState {
    pub(crate) fn new(rt: Option<PolicyRuntime>) -> PolicyState {
        PolicyState {
            enforced: rt.as_ref().is_some_and(|r| r.enforced),
            rejudge: rt.as_ref().is_some_and(|r| r.rejudge),
            names: rt
                .as_ref()
                .map(|r| NameCache::new(r.names_max, r.dns_min_ttl))
                .unwrap_or_default(),
            cache: rt.map(|r| arc_swap::Cache::new(r.engine)),
            ..PolicyState::default()
        }
    }

    /// A name a DNS answer bound to an address, before the packets that follow it.
    pub(crate) fn learn(&mut self, now_ns: u64, l: &Learned) {
        self.names.learn(now_ns, l);
    }

    /// Is `ip` a workload labelled `islet.io/admin: "true"` at `ts`? False without a policy.
    pub(crate) fn is_admin(&mut self, ip: std::net::IpAddr, ts: u64) -> bool {
        self.has_label(ip, ts, "islet.io/admin", "true")
    }

    /// Is `ip` a workload with label `key: value` at `ts`? False without a policy.
    pub(crate) fn has_label(
        &mut self,
        ip: std::net::IpAddr,
        ts: u64,
        key: &str,
        value: &str,
    ) -> bool {
        self.workload_is(ip, ts, |w| w.labels.get(key).is_some_and(|v| v == value))
    }

    /// Does the workload holding `ip` at `ts` satisfy `f`? False without a policy or a
    /// workload.
    fn workload_is(
        &mut self,
        ip: std::net::IpAddr,
        ts: u64,
        f: impl FnOnce(&islet_policy::Workload) -> bool,
    ) -> bool {
        let Some(cache) = self.cache.as_mut() else {
            return false;
        };
        let e = cache.load();
        let id = e
            .inventory
            .resolve(ip, i64::try_from(ts).unwrap_or(i64::MAX));
        e.inventory.workload(id).is_some_and(f)
    }

    /// Is `ip` a workload of `namespace` (if given) with label `key=value` (if given) at
    /// `ts`? False without a policy, or if neither is given.
    pub(crate) fn in_group(
        &mut self,
        ip: std::net::IpAddr,
        ts: u64,
        namespace: Option<&str>,
        label: Option<(&str, &str)>,
    ) -> bool {
        if namespace.is_none() && label.is_none() {
            return false;
        }
        self.workload_is(ip, ts, |w| {
            namespace.is_none_or(|n| w.namespace == n)
                && label.is_none_or(|(k, v)| w.labels.get(k).is_some_and(|x| x == v))
        })
    }

    /// The inventory's name of the workload holding `ip` at `ts` (`namespace/name`).
    pub(crate) fn workload_name(&mut self, ip: std::net::IpAddr, ts: u64) -> Option<String> {
        let e = self.cache.as_mut()?.load();
        let id = e
            .inventory
            .resolve(ip, i64::try_from(ts).unwrap_or(i64::MAX));
        matches!(id, islet_policy::Identity::Workload(_))
            .then(|| e.inventory.describe(id).to_string())
    }

    /// Addresses evicted from the name cache to stay within `policy.names_max`.
    pub(crate) fn names_evicted(&self) -> u64 {
        self.names.evicted
    }

    pub(crate) fn active(&self) -> bool {
        self.cache.is_some()
    }

    /// With `rejudge`: was `fj` judged by an engine a reload has since replaced? If so its
    /// hold on that engine ends here and the caller judges the flow again. One pointer
    /// comparison per packet.
    pub(crate) fn take_stale(&mut self, fj: &FlowJudgement) -> bool {
        if !self.rejudge || !fj.j.is_judged() {
            return false;
        }
        let Some(cache) = self.cache.as_mut() else {
            return false;
        };
        let e = cache.load();
        let stale = match self.engines.slots.get(fj.j.slot as usize) {
            Some(Some((have, _))) => !Arc::ptr_eq(have, e),
            _ => false,
        };
        if stale {
            self.engines.release(fj.j.slot);
            self.rejudged += 1;
        }
        stale
    }

    /// A new flow: judge it at L3/L4 into `j`, the flow's entry. True if an alert was
    /// written.
    pub(crate) fn flow_start(
        &mut self,
        fj: &mut FlowJudgement,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        eve: &EveOptions,
    ) -> bool {
        let Some(cache) = self.cache.as_mut() else {
            return false;
        };
        let e = cache.load();
        let t = ctx.tuple;
        let (src, dst) = (t.src_ip(), t.dst_ip());
        let mut dst_names = [""; MAX_NAMES_PER_ADDR];
        let mut n = 0;
        for (slot, name) in dst_names.iter_mut().zip(self.names.names(dst, ctx.ts_ns)) {
            *slot = name;
            n += 1;
        }
        let facts = FlowFacts {
            src,
            dst,
            proto: t.proto,
            dport: t.dport,
            ts_ns: i64::try_from(ctx.ts_ns).unwrap_or(i64::MAX),
            dst_names: &dst_names[..n],
            l7: None,
        };
        let v = e.verdict(&facts);
        fj.j = Judged::pack(&v, self.engines.acquire(e), false);
        // An end the inventory does not know is named by what DNS said of it.
        let unknown = |i: Identity| !matches!(i, Identity::Workload(_));
        let src_name = unknown(v.src)
            .then(|| self.names.name(src, ctx.ts_ns))
            .flatten();
        let dst_name = (unknown(v.dst) && n > 0).then(|| dst_names[n - 1]);
        fj.names = (src_name.is_some() || dst_name.is_some()).then(|| {
            Box::new(DerivedNames {
                src: src_name.map(str::to_owned),
                dst: dst_name.map(str::to_owned),
            })
        });
        if v.action != Action::Deny {
            return false;
        }
        self.denied += 1;
        self.alerts += 1;
        let n = note(e, fj, self.enforced, &mut self.text);
        alert(out, ctx, &n, None, eve);
        true
    }

    /// L7 metadata of a judged flow: refine its verdict when rules with L7 conditions apply.
    /// True if an alert was written.
    pub(crate) fn app_event(
        &mut self,
        fj: &mut FlowJudgement,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        ev: &AppEvent,
        eve: &EveOptions,
    ) -> bool {
        let l7 = match ev {
            AppEvent::Http(h) => L7Facts {
                http_method: Some(&h.http_method),
                http_path: Some(&h.url),
                http_host: h.hostname.as_deref(),
                ..L7Facts::default()
            },
            AppEvent::Tls(t) => L7Facts {
                sni: t.sni.as_deref(),
                ..L7Facts::default()
            },
            AppEvent::Quic(q) => L7Facts {
                sni: q.sni.as_deref(),
                ..L7Facts::default()
            },
            AppEvent::Dns(d) if !d.response => L7Facts {
                dns_query: d.queries.first().map(|q| q.rrname.as_str()),
                ..L7Facts::default()
            },
            _ => return false,
        };
        // A flow is refined by the engine that judged it: a reload applies to new flows.
        if !fj.j.is_judged() {
            return false;
        }
        let e = self.engines.get(fj.j.slot);
        let was = fj.j.verdict();
        if !e.has_l7() || was.action == Action::Deny {
            return false;
        }
        let t = ctx.tuple;
        let facts = FlowFacts {
            src: t.src_ip(),
            dst: t.dst_ip(),
            proto: t.proto,
            dport: t.dport,
            ts_ns: i64::try_from(ctx.ts_ns).unwrap_or(i64::MAX),
            dst_names: &[],
            l7: Some(l7),
        };
        let v = e.verdict_for(was.src, was.dst, &facts);
        if v.action == was.action && v.reason == was.reason {
            return false;
        }
        fj.j = Judged::pack(&v, fj.j.slot, true);
        if v.action != Action::Deny {
            return false;
        }
        self.denied += 1;
        self.alerts += 1;
        alert(
            out,
            ctx,
            &note(e, fj, self.enforced, &mut self.text),
            Some(ev),
            eve,
        );
        true
    }

    /// The verdict to write with an ended flow's record; the flow's hold on its engine ends.
    pub(crate) fn ended<'a>(&'a mut self, fj: &'a FlowJudgement) -> Option<PolicyNote<'a>> {
        if let Some(prev) = self.swept.take() {
            self.engines.sweep(prev);
        }
        if !fj.j.is_judged() {
            return None;
        }
        self.engines.release(fj.j.slot);
        self.swept = Some(fj.j.slot);
        Some(note(
            self.engines.get(fj.j.slot),
            fj,
            self.enforced,
            &mut self.text,
        ))
    }
}

/// Format a judgement's identity names and reason into `text` and borrow them into a note.
fn note<'a>(
    e: &'a Engine,
    fj: &'a FlowJudgement,
    enforced: bool,
    text: &'a mut String,
) -> PolicyNote<'a> {
    let j = &fj.j;
    let v = &j.verdict();
    text.clear();
    let _ = write!(text, "{}", e.inventory.describe(v.src));
    let src_end = text.len();
    let _ = write!(text, "{}", e.inventory.describe(v.dst));
    let dst_end = text.len();
    // An allow by a rule is said by `rule`, `tier` and `direction`; the words are left out
    // of every allowed flow's record.
    let words = v.action == Action::Deny || !matches!(v.reason, Reason::Rule(..));
    if words {
        let _ = write!(text, "{}", e.explain(v));
    }
    let text: &'a str = text;
    let named = fj.names.as_deref();
    let (rule, tier, direction) = match v.reason {
        Reason::Rule(r, d) => {
            let r = e.rule(r);
            (
                Some(r.id.as_str()),
                e.policy.tiers.get(r.tier as usize).map(String::as_str),
                Some(dir_name(d)),
            )
        }
        Reason::ImplicitDeny(d) => (None, None, Some(dir_name(d))),
        Reason::NotIsolated => (None, None, None),
    };
    PolicyNote {
        verdict: v.action.name(),
        action: if v.action == Action::Deny {
            "drop"
        } else {
            "pass"
        },
        enforced,
        rule,
        tier,
        direction,
        reason: words.then(|| &text[dst_end..]),
        audit_rule: v.audit.map(|a| e.rule(a).id.as_str()),
        src_identity: named
            .and_then(|d| d.src.as_deref())
            .unwrap_or(&text[..src_end]),
        dest_identity: named
            .and_then(|d| d.dst.as_deref())
            .unwrap_or(&text[src_end..dst_end]),
        src_entity: named
            .and_then(|d| d.src.as_ref())
            .map(|_| entity_name(v.src)),
        dest_entity: named
            .and_then(|d| d.dst.as_ref())
            .map(|_| entity_name(v.dst)),
        bundle_version: e.bundle_version,
        bundle_hash: &e.bundle_hash,
        l7: j.l7(),
    }
}

/// Write the `policy_violation` alert of a denied flow.
fn alert(
    out: &mut Vec<u8>,
    ctx: &EventContext<'_>,
    n: &PolicyNote<'_>,
    proto: Option<&AppEvent>,
    eve: &EveOptions,
) {
    let t = ctx.tuple;
    let proto_name = match t.proto {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => "ip",
    };
    let a = Alert {
        action: if n.enforced { "blocked" } else { "allowed" },
        signature_id: POLICY_SIGNATURE_ID,
        rev: 1,
        signature: format!(
            "islet policy: {} -> {} {proto_name}/{} denied ({})",
            n.src_identity,
            n.dest_identity,
            t.dport,
            n.reason.unwrap_or(n.verdict)
        ),
        category: "Policy violation".into(),
        severity: 2,
        metadata: vec![
            ("detection", vec!["policy_violation".into()]),
            (
                "policy_rule",
                vec![n.rule.unwrap_or("implicit-deny").to_owned()],
            ),
            ("src_identity", vec![n.src_identity.to_owned()]),
            ("dest_identity", vec![n.dest_identity.to_owned()]),
        ],
        intel: None,
        policy: Some(*n),
        evidence: None,
    };
    write_alert(
        out,
        ctx,
        &a,
        proto,
        proto.map(islet_event::eve_proto::event_type),
        eve,
    );
}

/// The entity an unknown end resolved to, written beside its DNS-derived name.
fn entity_name(i: Identity) -> &'static str {
    match i {
        Identity::Host => "host",
        Identity::Cluster => "cluster",
        _ => "world",
    }
}
