pub(crate) fn run(_a: &crate::cli::DemoArgs) -> Result<(), crate::Failure> {
    Err(crate::Failure::Runtime("todo".into()))
}
