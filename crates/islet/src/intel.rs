//! `islet intel …`: import threat intelligence into a snapshot, describe one, check values
//! against one, synthesise a feed; and the loader `islet read --intel` shares.

use crate::Failure;
use crate::cli::{IntelCheckArgs, IntelImportArgs, IntelStatsArgs, IntelSynthArgs};
use islet_intel::describe::{Description, Explain, ImportReport};
use islet_intel::feed::import_paths;

pub(crate) fn import(a: &IntelImportArgs) -> Result<(), Failure> {
    let (snap, report) = import_paths(&a.sources, &a.warninglists)?;
    print!("{}", ImportReport(&report));
    if let Some(o) = &a.output {
        snap.save(o)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", o.display())))?;
        println!("snapshot: {} ({} indicators)", o.display(), snap.len());
    }
    Ok(())
}

pub(crate) fn stats(a: &IntelStatsArgs) -> Result<(), Failure> {
    let (snapshot, report) = import_paths(std::slice::from_ref(&a.snapshot), &[])?;
    if report.rejected_total > 0 {
        return Err(Failure::Input(format!(
            "{}: {} entries could not be read",
            a.snapshot.display(),
            report.rejected_total
        )));
    }
    print!(
        "{}",
        Description {
            path: &a.snapshot,
            snapshot: &snapshot
        }
    );
    Ok(())
}

pub(crate) fn check(a: &IntelCheckArgs) -> Result<(), Failure> {
    let (snapshot, _) = &import_paths(&a.intel, &a.warninglists)?;
    for value in &a.values {
        print!("{}", Explain { snapshot, value });
    }
    Ok(())
}

/// `islet intel synth`: a MISP CSV export of `count` indicators.
pub(crate) fn synth(a: &IntelSynthArgs) -> Result<(), Failure> {
    let f = std::fs::File::create(&a.output)
        .map_err(|e| Failure::Runtime(format!("{}: {e}", a.output.display())))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    islet_intel::synth::write_misp_csv(&mut w, a.count, a.seed)
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    println!("wrote {} indicators to {}", a.count, a.output.display());
    Ok(())
}
