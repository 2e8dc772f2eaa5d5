//! The examples of the Kubernetes NetworkPolicy documentation (concepts/services-networking/
//! network-policies), imported as YAML, give the decisions the documentation describes.

use islet_policy::engine::{FlowFacts, Reason};
use islet_policy::ir::Action;
use islet_policy::{Engine, Inventory, import};
use std::sync::Arc;

const INVENTORY: &str = r#"
cluster_cidrs = ["10.0.0.0/8"]
[namespaces.myproject]
labels = { project = "myproject" }
[namespaces.alice-ns]
labels = { user = "alice" }
[[workload]]
name = "db-0"
kind = "pod"
namespace = "default"
labels = { role = "db" }
addresses = ["10.1.0.10"]
[[workload]]
name = "frontend-0"
kind = "pod"
namespace = "default"
labels = { role = "frontend" }
addresses = ["10.1.0.20"]
[[workload]]
name = "other-0"
kind = "pod"
namespace = "default"
labels = { role = "other" }
addresses = ["10.1.0.30"]
[[workload]]
name = "mp-0"
kind = "pod"
namespace = "myproject"
labels = { app = "x" }
addresses = ["10.2.0.5"]
[[workload]]
name = "elsewhere-0"
kind = "pod"
namespace = "elsewhere"
labels = { role = "frontend" }
addresses = ["10.3.0.5"]
[[workload]]
name = "client-0"
kind = "pod"
namespace = "alice-ns"
labels = { role = "client" }
addresses = ["10.4.0.5"]
[[workload]]
name = "server-0"
kind = "pod"
namespace = "alice-ns"
labels = { role = "server" }
addresses = ["10.4.0.6"]
"#;

fn engine(yaml: &str) -> Engine {
    let inv = Inventory::from_toml("inv.toml", INVENTORY).expect("inventory");
    let p = import::parse("np.yaml", yaml).expect("policy");
    assert!(p.unsupported.is_empty(), "{:?}", p.unsupported);
    Engine::new(p, Arc::new(inv))
}

fn decide(e: &Engine, src: &str, dst: &str, proto: u8, port: u16) -> Action {
    let f = FlowFacts {
        src: src.parse().expect("src"),
        dst: dst.parse().expect("dst"),
        proto,
        dport: port,
        ts_ns: 0,
        dst_names: &[],
        l7: None,
    };
    let v = e.verdict(&f);
    if v.action == Action::Deny {
        // Every deny names its rule or the implicit deny.
        let why = e.explain(&v).to_string();
        assert!(
            why.contains("implicit-deny: no rule selects") || why.contains("by rule"),
            "{why}"
        );
    }
    v.action
}

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The page's `test-network-policy`.
#[test]
fn the_documented_test_network_policy() {
    let e = engine(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
"#,
    );
    let db = "10.1.0.10";
    // Ingress to role=db on TCP 6379: from role=frontend pods of `default`, from any pod of a
    // namespace labelled project=myproject, from 172.17.0.0/16 except 172.17.1.0/24.
    assert_eq!(decide(&e, "10.1.0.20", db, TCP, 6379), Action::Allow);
    assert_eq!(decide(&e, "10.2.0.5", db, TCP, 6379), Action::Allow);
    assert_eq!(decide(&e, "172.17.2.5", db, TCP, 6379), Action::Allow);
    assert_eq!(decide(&e, "172.17.1.5", db, TCP, 6379), Action::Deny);
    assert_eq!(decide(&e, "10.1.0.30", db, TCP, 6379), Action::Deny);
    assert_eq!(
        decide(&e, "10.3.0.5", db, TCP, 6379),
        Action::Deny,
        "role=frontend elsewhere is not selected"
    );
    assert_eq!(decide(&e, "10.1.0.20", db, TCP, 6380), Action::Deny);
    assert_eq!(decide(&e, "10.1.0.20", db, UDP, 6379), Action::Deny);
    // Egress from role=db: only 10.0.0.0/24 on TCP 5978.
    assert_eq!(decide(&e, db, "10.0.0.7", TCP, 5978), Action::Allow);
    assert_eq!(decide(&e, db, "10.0.0.7", TCP, 80), Action::Deny);
    assert_eq!(decide(&e, db, "10.1.0.20", TCP, 5978), Action::Deny);
    // Pods the policy does not select are not isolated.
    assert_eq!(decide(&e, "10.1.0.30", "10.1.0.20", TCP, 80), Action::Allow);
}

#[test]
fn default_deny_and_allow_all() {
    let deny_ingress = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
"#;
    let e = engine(deny_ingress);
    assert_eq!(decide(&e, "10.1.0.20", "10.1.0.10", TCP, 80), Action::Deny);
    assert_eq!(
        decide(&e, "10.1.0.10", "10.2.0.5", TCP, 80),
        Action::Allow,
        "other namespaces untouched; egress not isolated"
    );
    let v = e.verdict(&FlowFacts {
        src: "10.1.0.20".parse().expect("ip"),
        dst: "10.1.0.10".parse().expect("ip"),
        proto: TCP,
        dport: 80,
        ts_ns: 0,
        dst_names: &[],
        l7: None,
    });
    assert!(matches!(v.reason, Reason::ImplicitDeny(_)));
    assert_eq!(
        e.explain(&v).to_string(),
        "implicit-deny: no rule selects default/frontend-0 for ingress of default/db-0"
    );

    let allow_all = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all-ingress
spec:
  podSelector: {}
  ingress:
  - {}
  policyTypes:
  - Ingress
"#;
    let e = engine(allow_all);
    assert_eq!(decide(&e, "8.8.8.8", "10.1.0.10", UDP, 53), Action::Allow);

    let deny_egress = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
"#;
    let e = engine(deny_egress);
    assert_eq!(decide(&e, "10.1.0.10", "8.8.8.8", UDP, 53), Action::Deny);
    assert_eq!(decide(&e, "8.8.8.8", "10.1.0.10", UDP, 53), Action::Allow);

    let deny_all = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-all
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
"#;
    let e = engine(deny_all);
    assert_eq!(decide(&e, "10.1.0.10", "8.8.8.8", UDP, 53), Action::Deny);
    assert_eq!(decide(&e, "8.8.8.8", "10.1.0.10", UDP, 53), Action::Deny);
    assert_eq!(
        decide(&e, "10.2.0.5", "10.3.0.5", TCP, 1),
        Action::Allow,
        "other namespaces"
    );
}

/// `multi-port-egress`: a port range with `endPort`.
#[test]
fn port_ranges() {
    let e = engine(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
"#,
    );
    for (port, want) in [
        (31999, Action::Deny),
        (32000, Action::Allow),
        (32500, Action::Allow),
        (32768, Action::Allow),
        (32769, Action::Deny),
    ] {
        assert_eq!(
            decide(&e, "10.1.0.10", "10.0.0.9", TCP, port),
            want,
            "port {port}"
        );
    }
}

/// The page's contrast between one `from` element with both selectors (AND) and two
/// elements (OR), and selecting a namespace by its name label.
#[test]
fn namespace_and_pod_selectors_and_or() {
    let and = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: and
  namespace: alice-ns
spec:
  podSelector:
    matchLabels:
      role: server
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          user: alice
      podSelector:
        matchLabels:
          role: client
"#;
    let e = engine(and);
    assert_eq!(decide(&e, "10.4.0.5", "10.4.0.6", TCP, 80), Action::Allow);
    assert_eq!(decide(&e, "10.2.0.5", "10.4.0.6", TCP, 80), Action::Deny);
    let or = and
        .replace("      podSelector:", "    - podSelector:")
        .replace("name: and", "name: or");
    let e = engine(&or);
    assert_eq!(decide(&e, "10.4.0.5", "10.4.0.6", TCP, 80), Action::Allow);
    assert_eq!(
        decide(&e, "10.4.0.6", "10.4.0.6", TCP, 80),
        Action::Allow,
        "any pod of a user=alice namespace"
    );
    assert_eq!(decide(&e, "10.2.0.5", "10.4.0.6", TCP, 80), Action::Deny);

    let by_name = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-myproject
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: In
          values: ["myproject"]
"#;
    let e = engine(by_name);
    assert_eq!(
        decide(&e, "10.2.0.5", "10.1.0.10", TCP, 5432),
        Action::Allow
    );
    assert_eq!(
        decide(&e, "10.1.0.20", "10.1.0.10", TCP, 5432),
        Action::Deny
    );
}

#[test]
fn bad_policies_are_rejected_with_file_line_and_reason() {
    let bad_cidr = "kind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock:\n        cidr: 300.0.0.0/8\n";
    let e = import::parse("bad.yaml", bad_cidr)
        .expect_err("bad cidr")
        .to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("ipBlock.cidr") && e.contains("300.0.0.0/8"),
        "{e}"
    );
    let syntax = "kind: NetworkPolicy\nmetadata: [\n";
    let e = import::parse("syntax.yaml", syntax)
        .expect_err("syntax")
        .to_string();
    assert!(e.starts_with("syntax.yaml: line "), "{e}");
    let op = "kind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  podSelector:\n    matchExpressions:\n    - key: a\n      operator: Maybe\n";
    let e = import::parse("op.yaml", op)
        .expect_err("operator")
        .to_string();
    assert!(e.contains("unknown selector operator \"Maybe\""), "{e}");
    // Fields islet cannot honour are named, not dropped.
    let named_port = "kind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n  foo: 1\n";
    let p = import::parse("np.yaml", named_port).expect("parses");
    assert!(
        p.unsupported.iter().any(|u| u.contains("named ports")),
        "{:?}",
        p.unsupported
    );
    assert!(
        p.unsupported
            .iter()
            .any(|u| u.contains("spec.foo is not supported")),
        "{:?}",
        p.unsupported
    );
    let toml = "[[rule]]\nid = \"a\"\naction = \"allow\"\ndirection = \"ingress\"\nsubject = {}\nbogus = 1\n";
    let e = import::parse("p.toml", toml)
        .expect_err("unknown field")
        .to_string();
    assert!(
        e.starts_with("p.toml: line 6: unknown field `bogus`"),
        "{e}"
    );
}
