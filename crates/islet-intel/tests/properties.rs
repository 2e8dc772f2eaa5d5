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
        for i in snap.iter() {
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

/// A MISP event of ip-dst prefixes and domains, through a saved image.
fn image_of(prefixes: &[(u32, u8)], domains: &[String]) -> islet_intel::Snapshot {
    let mut attrs = Vec::new();
    for &(a, len) in prefixes {
        let v = format!("{}/{len}", std::net::Ipv4Addr::from(a));
        attrs.push(serde_json::json!({"type": "ip-dst", "value": v, "to_ids": true}));
    }
    for d in domains {
        attrs.push(serde_json::json!({"type": "domain", "value": d, "to_ids": true}));
    }
    let doc = serde_json::json!({"Event": {"uuid": "p", "info": "p", "Attribute": attrs}});
    let mut imp = Importer::new(Vec::new());
    imp.add_bytes("p", doc.to_string().as_bytes());
    let (snap, _) = imp.finish();
    let mut bytes = Vec::new();
    snap.write_to(&mut bytes).expect("write");
    islet_intel::Snapshot::from_bytes(bytes).expect("image")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The image's hash tables and pre-filters answer exactly as a scan of every prefix.
    #[test]
    fn address_lookups_equal_a_scan(prefixes in proptest::collection::vec((any::<u32>(), 8u8..=32), 1..200),
                                    probes in proptest::collection::vec(any::<u32>(), 0..200)) {
        let snap = image_of(&prefixes, &[]);
        let stored: Vec<(u32, u8)> = snap
            .iter()
            .map(|i| {
                let p = Prefix::parse(&i.value).expect("prefix");
                ((p.bits >> 96) as u32, p.len)
            })
            .collect();
        let near = prefixes.iter().map(|&(a, _)| a);
        for a in probes.into_iter().chain(near) {
            let mut got = Vec::new();
            snap.match_addr_port(IpAddr::from(std::net::Ipv4Addr::from(a)), None, false, &mut got);
            got.sort_unstable();
            let want: Vec<u32> = stored
                .iter()
                .enumerate()
                .filter(|(_, (p, len))| u64::from(a ^ p) >> (32 - len) == 0)
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    /// `domain` matches the name and its subdomains, nothing else.
    #[test]
    fn name_lookups_equal_a_scan(domains in proptest::collection::vec("[a-c]{1,3}(\\.[a-c]{1,3}){0,2}", 1..40),
                                 probes in proptest::collection::vec("[a-c]{1,3}(\\.[a-c]{1,3}){0,3}", 0..60)) {
        let snap = image_of(&[], &domains);
        let stored: Vec<String> = snap.iter().map(|i| i.value).collect();
        for n in probes.iter().chain(domains.iter()) {
            let mut got = Vec::new();
            snap.match_name(n, &mut got);
            got.sort_unstable();
            let want: Vec<u32> = stored
                .iter()
                .enumerate()
                .filter(|(_, d)| n == *d || n.ends_with(&format!(".{d}")))
                .map(|(i, _)| i as u32)
                .collect();
            prop_assert_eq!(got, want, "name {}", n);
        }
    }

    /// A damaged image (CRC not checked) is refused or answers; it never panics.
    #[test]
    fn damaged_images_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..24)) {
        let docs = corpus_docs();
        let mut imp = Importer::new(Vec::new());
        for d in docs.iter().take(4) {
            imp.add_bytes("doc", d);
        }
        let (snap, _) = imp.finish();
        let mut img = Vec::new();
        snap.write_to(&mut img).expect("write");
        prop_assert!(islet_intel::Snapshot::from_bytes(img.clone()).is_ok());
        for (at, x) in flips {
            let i = at.index(img.len());
            img[i] ^= x;
        }
        prop_assert!(islet_intel::Snapshot::from_bytes(img.clone()).is_err(), "CRC must catch it");
        if let Ok(s) = islet_intel::Snapshot::from_bytes_unverified(img) {
            let values: Vec<String> = s.iter().map(|i| i.value).collect();
            for v in values.iter().take(200) {
                let _ = s.check(v);
            }
            let mut out = Vec::new();
            s.match_flow("192.0.2.1".parse().expect("ip"), 1, "198.51.100.1".parse().expect("ip"), 2, &mut out);
            for i in out {
                let _ = (s.indicator(i), s.context(i));
            }
        }
    }

    /// Freetext guessing never panics, and a value it found is found again as itself.
    #[test]
    fn freetext_guess_is_stable(t in "\\PC{0,60}") {
        use islet_intel::text::{Guess, guess};
        if let Guess::Indicator(kind, v) = guess(&t)
            && kind != "ip-dst|port"
        {
            prop_assert_eq!(guess(&v), Guess::Indicator(kind, v.clone()), "from {:?}", t);
        }
    }

    /// Defanged domains, URLs and addresses are recovered.
    #[test]
    fn defanged_values_are_recovered(host in "[a-z][a-z0-9-]{0,10}\\.(com|net|org|ru)",
                                     path in "(/[a-z0-9]{1,8}){0,2}",
                                     ip in any::<[u8; 4]>()) {
        use islet_intel::text::{Guess, guess};
        let fanged = host.replace('.', "[.]");
        prop_assert_eq!(guess(&fanged), Guess::Indicator("domain", host.clone()));
        let url = format!("hxxp://{fanged}{path}");
        prop_assert_eq!(guess(&url), Guess::Indicator("url", format!("http://{host}{path}")));
        let a = std::net::Ipv4Addr::from(ip).to_string();
        prop_assert_eq!(guess(&a.replace('.', "(.)")), Guess::Indicator("ip-dst", a.clone()));
    }
}

/// With enough long prefixes the image carries the /24 map; lookups still equal a scan.
#[test]
fn address_lookups_with_the_24_map_equal_a_scan() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // 100,000 draws (fewer distinct) of /24 to /32 inside 16 /16s, so probes land near them.
    let prefixes: Vec<(u32, u8)> = (0..100_000)
        .map(|_| {
            let r = next();
            let a = (0x0a00_0000 | ((r as u32 & 0xf) << 16)) | ((r >> 8) as u32 & 0xffff);
            let len = 24 + (r >> 40) as u8 % 9;
            (a & (u32::MAX << (32 - u32::from(len))), len)
        })
        .collect();
    let snap = image_of(&prefixes, &[]);
    assert!(
        snap.image_len() > 32 << 20,
        "the /24 map is built: {} indicators, {} bytes",
        snap.len(),
        snap.image_len()
    );
    let stored: Vec<(u32, u8)> = snap
        .iter()
        .map(|i| {
            let p = Prefix::parse(&i.value).expect("prefix");
            ((p.bits >> 96) as u32, p.len)
        })
        .collect();
    let mut hits = 0;
    for k in 0..3000 {
        let r = next();
        let a = if k % 2 == 0 {
            prefixes[(r as usize) % prefixes.len()].0 | (r >> 32) as u32 & 0xff
        } else {
            0x0a00_0000 | (r as u32 & 0x000f_ffff)
        };
        let mut got = Vec::new();
        snap.match_addr_port(
            IpAddr::from(std::net::Ipv4Addr::from(a)),
            None,
            false,
            &mut got,
        );
        got.sort_unstable();
        let want: Vec<u32> = stored
            .iter()
            .enumerate()
            .filter(|(_, (p, len))| u64::from(a ^ p) >> (32 - len) == 0)
            .map(|(i, _)| i as u32)
            .collect();
        hits += usize::from(!want.is_empty());
        assert_eq!(got, want, "address {}", std::net::Ipv4Addr::from(a));
    }
    assert!(hits > 1000, "probes should often hit ({hits})");
}
