//! Policy and inventory text: islet TOML, Kubernetes/Cilium YAML or JSON policies and
//! inventories (TOML, pod lists). Whatever parses is compiled into an engine and asked for
//! verdicts, with and without L7 metadata.
#![no_main]
use islet_policy::engine::{FlowFacts, L7Facts};
use islet_policy::{Engine, Inventory, import};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let name = if sel & 1 == 0 { "fuzz.toml" } else { "fuzz.yaml" };
    let inv = Inventory::from_text(name, &text).unwrap_or_default();
    let Ok(p) = import::parse(name, &text) else {
        return;
    };
    let e = Engine::new(p, Arc::new(inv));
    for (src, dst) in [("10.0.0.1", "10.0.0.2"), ("192.0.2.1", "10.1.2.3"), ("2001:db8::1", "fd00::1")] {
        let mut f = FlowFacts {
            src: src.parse().expect("ip"),
            dst: dst.parse().expect("ip"),
            proto: 6,
            dport: 443,
            ts_ns: 1_700_000_000_000_000_000,
            dst_names: &[],
            l7: None,
        };
        let v = e.verdict(&f);
        let _ = e.explain(&v).to_string();
        f.l7 = Some(L7Facts {
            http_method: Some("GET"),
            http_path: Some("/api/v1/x"),
            http_host: Some("a.example:8080"),
            sni: Some("a.example"),
            dns_query: Some("b.example"),
        });
        let v = e.verdict_for(v.src, v.dst, &f);
        let _ = e.explain(&v).to_string();
    }
});
