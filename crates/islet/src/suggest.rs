//! `islet policy suggest`: the least-privilege policy that allows exactly the traffic of the
//! captures, written as islet TOML and Kubernetes NetworkPolicy YAML
//! (`islet_sensor::suggest`).

use crate::Failure;
use crate::cli::PolicySuggestArgs;
use islet_sensor::suggest::suggest as suggested;

pub(crate) fn suggest(a: &PolicySuggestArgs) -> Result<(), Failure> {
    let s = suggested(&a.inventory, &a.pcaps)?;
    let [toml, yaml] = s.write_to(&a.out)?;
    let (i, e) = (s.ingress_edges, s.egress_edges);
    let (t, y) = (toml.display(), yaml.display());
    println!(
        "{} flows: {i} ingress and {e} egress edges; wrote {t} and {y}",
        s.flows
    );
    Ok(())
}
