pub(crate) fn run(_a: &crate::cli::SynthArgs) -> Result<(), crate::Failure> {
    Err(crate::Failure::Runtime("todo".into()))
}
