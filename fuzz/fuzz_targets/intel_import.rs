//! Any document handed to the intelligence importer (MISP JSON, STIX, warninglist, snapshot,
//! plain list), then a lookup of every imported value against the compiled snapshot.
#![no_main]
use islet_intel::Importer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut imp = Importer::new(Vec::new());
    imp.add_bytes("fuzz", data);
    let (snap, _) = imp.finish();
    let values: Vec<String> = snap.iter().map(|i| i.value).collect();
    for v in values {
        let _ = snap.check(&v);
    }
    let mut out = Vec::new();
    let _ = snap.write_to(&mut out);
});
