//! A worker's segmentation state: each new flow's verdict (identities frozen at its first
//! packet), its refinement when L7 metadata arrives, a `policy_violation` alert for each
//! denied flow, and the verdict carried into the flow's EVE record. The engine is shared
//! read-only through an `ArcSwap`, cached per worker, so a policy reload swaps atomically and
//! no lookup waits.

use arc_swap::ArcSwap;
use islet_event::alert::write_alert;
use islet_event::eve::EveOptions;
use islet_event::eve_proto::EventContext;
use islet_event::proto::AppEvent;
use islet_event::{Alert, PolicyNote};
use islet_policy::engine::{FlowFacts, L7Facts, Reason, dir_name};
use islet_policy::ir::Action;
use islet_policy::{Engine, Identity, Verdict};
use std::sync::Arc;

/// `alert.signature_id` of a policy violation.
pub const POLICY_SIGNATURE_ID: u32 = 9_200_001;

/// The policy a sensor judges with.
#[derive(Clone, Debug)]
pub struct PolicyRuntime {
    pub engine: Arc<ArcSwap<Engine>>,
    /// Inline enforcement (drops happen); false on a tap or capture files.
    pub enforced: bool,
}

impl PolicyRuntime {
    pub fn fixed(e: Engine) -> PolicyRuntime {
        PolicyRuntime {
            engine: Arc::new(ArcSwap::from_pointee(e)),
            enforced: false,
        }
    }
}

type EngineCache = arc_swap::Cache<Arc<ArcSwap<Engine>>, Arc<Engine>>;

/// A live flow's judgement.
#[derive(Debug)]
struct FlowPolicy {
    src: Identity,
    dst: Identity,
    action: Action,
    reason: Reason,
    note: PolicyNote,
}

#[derive(Debug, Default)]
pub(crate) struct PolicyState {
    enforced: bool,
    cache: Option<EngineCache>,
    flows: hashbrown::HashMap<u64, FlowPolicy>,
    pub(crate) denied: u64,
    pub(crate) alerts: u64,
}

impl PolicyState {
    pub(crate) fn new(rt: Option<PolicyRuntime>) -> PolicyState {
        PolicyState {
            enforced: rt.as_ref().is_some_and(|r| r.enforced),
            cache: rt.map(|r| arc_swap::Cache::new(r.engine)),
            ..PolicyState::default()
        }
    }

    pub(crate) fn active(&self) -> bool {
        self.cache.is_some()
    }

    /// A new flow: judge it at L3/L4. True if an alert was written.
    pub(crate) fn flow_start(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        eve: &EveOptions,
    ) -> bool {
        let Some(mut cache) = self.cache.take() else {
            return false;
        };
        let e = cache.load();
        let t = ctx.tuple;
        let facts = FlowFacts {
            src: t.src_ip(),
            dst: t.dst_ip(),
            proto: t.proto,
            dport: t.dport,
            ts_ns: i64::try_from(ctx.ts_ns).unwrap_or(i64::MAX),
            dst_names: &[],
            l7: None,
        };
        let v = e.verdict(&facts);
        let note = note(e, &v, self.enforced, false);
        let alerted = v.action == Action::Deny && self.alert(out, ctx, &note, None, eve);
        if v.action == Action::Deny {
            self.denied += 1;
        }
        self.flows.insert(
            ctx.flow_id,
            FlowPolicy {
                src: v.src,
                dst: v.dst,
                action: v.action,
                reason: v.reason,
                note,
            },
        );
        self.cache = Some(cache);
        alerted
    }

    /// L7 metadata of a judged flow: refine its verdict when rules with L7 conditions apply.
    /// True if an alert was written.
    pub(crate) fn app_event(
        &mut self,
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
        let Some(mut cache) = self.cache.take() else {
            return false;
        };
        let e = cache.load();
        let mut alerted = false;
        if e.has_l7()
            && let Some(fp) = self.flows.get_mut(&ctx.flow_id)
            && fp.action != Action::Deny
        {
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
            let v = e.verdict_for(fp.src, fp.dst, &facts);
            if v.action != fp.action || v.reason != fp.reason {
                fp.action = v.action;
                fp.reason = v.reason;
                fp.note = note(e, &v, self.enforced, true);
                if v.action == Action::Deny {
                    self.denied += 1;
                    let n = fp.note.clone();
                    alerted = self.alert(out, ctx, &n, Some(ev), eve);
                }
            }
        }
        self.cache = Some(cache);
        alerted
    }

    /// The verdict to write with the flow's record (and forget the flow).
    pub(crate) fn take(&mut self, flow_id: u64) -> Option<PolicyNote> {
        self.flows.remove(&flow_id).map(|f| f.note)
    }

    fn alert(
        &mut self,
        out: &mut Vec<u8>,
        ctx: &EventContext<'_>,
        n: &PolicyNote,
        proto: Option<&AppEvent>,
        eve: &EveOptions,
    ) -> bool {
        let t = ctx.tuple;
        let proto_name = match t.proto {
            6 => "tcp",
            17 => "udp",
            132 => "sctp",
            _ => "ip",
        };
        let a = Alert {
            action: if self.enforced { "blocked" } else { "allowed" },
            signature_id: POLICY_SIGNATURE_ID,
            rev: 1,
            signature: format!(
                "islet policy: {} -> {} {proto_name}/{} denied ({})",
                n.src_identity, n.dest_identity, t.dport, n.reason
            ),
            category: "Policy violation".into(),
            severity: 2,
            metadata: vec![
                ("detection", vec!["policy_violation".into()]),
                (
                    "policy_rule",
                    vec![n.rule.clone().unwrap_or_else(|| "implicit-deny".into())],
                ),
                ("src_identity", vec![n.src_identity.clone()]),
                ("dest_identity", vec![n.dest_identity.clone()]),
            ],
            intel: None,
            policy: Some(n.clone()),
        };
        write_alert(
            out,
            ctx,
            &a,
            proto,
            proto.map(islet_event::eve_proto::event_type),
            eve,
        );
        self.alerts += 1;
        true
    }
}

fn note(e: &Engine, v: &Verdict, enforced: bool, l7: bool) -> PolicyNote {
    let (rule, tier, direction) = match v.reason {
        Reason::Rule(r, d) => {
            let r = e.rule(r);
            (
                Some(r.id.clone()),
                e.policy.tiers.get(r.tier as usize).cloned(),
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
        reason: e.explain(v).to_string(),
        audit_rule: v.audit.map(|a| e.rule(a).id.clone()),
        src_identity: e.inventory.describe(v.src).to_string(),
        dest_identity: e.inventory.describe(v.dst).to_string(),
        bundle_version: e.bundle_version,
        bundle_hash: e.bundle_hash.clone(),
        l7,
    }
}
