//! Properties of the intelligence parsers and matchers: random and mutated real documents
//! never panic and account for every entry; normal forms are idempotent; a prefix contains
//! every address it was cut from.

use islet_intel::normalize::{self, Prefix};
use islet_intel::{Importer, stix};
use proptest::prelude::*;
use std::net::IpAddr;

fn corpus_docs() -> Vec<Vec<u8>> {
    let Some(shared) = islet_testkit::shared_dir() else {
        return vec![br#"{"Event":{"uuid":"x","Attribute":[{"type":"domain","value":"a.example","to_ids":"1"}]}}"#.to_vec()];
    };
    let mut out = Vec::new();
    for sub in ["misp-events", "stix"] {
        let dir = shared.join("corpus/intel").join(sub);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files {
            if let Ok(b) = std::fs::read(f) {
                out.push(b);
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut imp = Importer::new(Vec::new());
        imp.add_bytes("random", &data);
        let (snap, _) = imp.finish();
        for i in snap.indicators() {
            let _ = snap.check(&i.value);
        }
    }

    #[test]
    fn mutated_documents_never_panic(pick in any::<prop::sample::Index>(),
                                     flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let docs = corpus_docs();
        let mut d = docs[pick.index(docs.len())].clone();
        for (at, b) in flips {
            let i = at.index(d.len().max(1));
            if let Some(x) = d.get_mut(i) {
                *x = b;
            }
        }
        let mut imp = Importer::new(Vec::new());
        imp.add_bytes("mutated", &d);
        let (snap, report) = imp.finish();
        prop_assert_eq!(snap.len() as u64, report.imported_total());
    }

    #[test]
    fn stix_patterns_never_panic(p in "[\\[\\]() a-z0-9:.'=_-]{0,120}") {
        let _ = stix::indicators(&p);
    }

    #[test]
    fn url_normal_form_is_idempotent(host in "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z]{2,6}){1,2}",
                                     port in proptest::option::of(1u16..),
                                     path in "(/[a-zA-Z0-9._~-]{0,8}){0,3}(\\?[a-z]=[0-9]{1,3})?",
                                     scheme in "(http|https|HTTP|ftp)") {
        let raw = match port {
            Some(p) => format!("{scheme}://{host}:{p}{path}"),
            None => format!("{scheme}://{host}{path}"),
        };
        let once = normalize::url(&raw).expect("valid url");
        prop_assert_eq!(normalize::url(&once).expect("again"), once.clone());
        prop_assert!(once.starts_with(&scheme.to_ascii_lowercase()));
    }

    #[test]
    fn a_prefix_contains_what_it_was_cut_from(a in any::<u32>(), b in any::<u128>(), len4 in 0u8..=32, len6 in 0u8..=128) {
        let v4 = Prefix::of(IpAddr::from(a.to_be_bytes()));
        prop_assert!(v4.truncate(len4).contains(v4));
        let v6 = Prefix::of(IpAddr::from(b.to_be_bytes()));
        prop_assert!(v6.truncate(len6).contains(v6));
        prop_assert!(!v6.truncate(len6).contains(v4));
        let text = format!("{}/{len4}", IpAddr::from(a.to_be_bytes()));
        prop_assert_eq!(Prefix::parse(&text), Some(v4.truncate(len4)));
    }
}
