//! Argument parsing (clap) and dispatch.

use crate::Failure;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// islet — a security island for east-west traffic.
#[derive(Debug, Parser)]
#[command(name = "islet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse capture files (pcap/pcapng) and write EVE JSON events.
    Read(Box<ReadArgs>),
    /// The live sensor: monitor interfaces (--tap) or bridge pairs inline (--inline),
    /// dropping denied flows; SIGHUP reloads policy and intel, SIGTERM drains and stops.
    Run(Box<RunArgs>),
    /// Write synthetic scenario traffic to a pcap file.
    Synth(SynthArgs),
    /// Run the main job on embedded defaults: synthesise scenarios, analyse them like a sensor,
    /// forward the evidence to the console, and serve it (prints the URL and a token).
    Demo(DemoArgs),
    /// The investigation console: ingest EVE over the Forward protocol or from files into the
    /// store, triage alerts into cases, the time-travel map, TheHive/MISP export, API and web UI.
    Serve(Box<ServeArgs>),
    /// Threat intelligence: import MISP/STIX/lists into a snapshot, describe it, check values.
    #[command(subcommand)]
    Intel(IntelCommand),
    /// Segmentation policy: keys, signed bundles, checking and showing policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Evidence logs: the sensor's signing key, and proving a log complete and unmodified.
    #[command(subcommand)]
    Log(LogCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Make the sensor's Ed25519 key pair: DIR/sensor.key (secret) and DIR/sensor.pub.
    Keygen(LogKeygenArgs),
    /// Prove that chained logs (given in order; rotated `.gz` files too) are complete and
    /// unmodified: exit 0 if so, else name the first record altered, removed, reordered or
    /// inserted, or the truncation, and exit 2.
    Verify(LogVerifyArgs),
    /// Receive records over the Fluentd Forward protocol, write each as the JSON line the
    /// sensor wrote, and with `--key` check the chain as records arrive (duplicates from
    /// resends are dropped). Stops after `--max-records`, or never.
    Receive(LogReceiveArgs),
}

/// Arguments of `islet log receive`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogReceiveArgs {
    /// Address to listen on, e.g. 127.0.0.1:24224.
    #[arg(long)]
    pub listen: String,
    /// Where to write the records (`-` for stdout).
    #[arg(short = 'o', long = "output", default_value = "-")]
    pub output: String,
    /// The sensor's public key: check the chain as records arrive.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Require the shared-key handshake with this key.
    #[arg(long = "shared-key")]
    pub shared_key: Option<String>,
    /// Stop after this many records (duplicates not counted).
    #[arg(long = "max-records")]
    pub max_records: Option<u64>,
}

/// Arguments of `islet log keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogKeygenArgs {
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `islet log verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogVerifyArgs {
    /// Log files, oldest first: together one chain.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The sensor's public key (`sensor.pub`).
    #[arg(long, required = true)]
    pub key: PathBuf,
    /// The log may start mid-chain (earlier files rotated away, or a restarted sensor's file).
    #[arg(long)]
    pub partial: bool,
    /// The sensor's state directory (its `--state-dir`, or SPOOL/state; or the `chain.head`
    /// file): the log must end where the sensor's saved chain head says, else it is truncated.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The log must end at this sequence number (the sensor's `islet_chain_seq`).
    #[arg(long = "expect-seq", value_name = "N", conflicts_with = "state")]
    pub expect_seq: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Make an Ed25519 key pair: DIR/policy.key (secret) and DIR/policy.pub.
    Keygen(PolicyKeygenArgs),
    /// Sign a bundle directory: write its manifest (file hashes, version, validity) and
    /// signature into it.
    Sign(PolicySignArgs),
    /// Verify a bundle against pinned public keys; exit 0 only if it is valid.
    Verify(PolicyVerifyArgs),
    /// Load a policy (bundle directory or file) and warn about what it cannot honour, rules
    /// that select nothing, and rules that contradict each other.
    Check(PolicyCheckArgs),
    /// Print a policy's tiers and rules.
    Show(PolicyShowArgs),
    /// Replay captures against a candidate policy: which edges (identity to identity, protocol
    /// and port) it would deny or allow, against a baseline policy or none.
    Simulate(PolicySimulateArgs),
    /// Observe captures and write the least-privilege policy that allows exactly what was
    /// seen, identity to identity: islet TOML and Kubernetes NetworkPolicy YAML.
    Suggest(PolicySuggestArgs),
}

/// Arguments of `islet policy suggest`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicySuggestArgs {
    #[arg(long, required = true)]
    pub inventory: PathBuf,
    /// Folder for `suggested.toml` and `suggested-networkpolicy.yaml`.
    #[arg(long = "out")]
    pub out: PathBuf,
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
}

/// Arguments of `islet policy simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicySimulateArgs {
    /// The candidate policy (bundle directory or file; signatures are not needed here).
    #[arg(long)]
    pub policy: PathBuf,
    /// The policy in force to compare with (default: none, which allows everything).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Print every edge, not only those whose verdict changes.
    #[arg(long)]
    pub all: bool,
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
}

/// Arguments of `islet policy keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyKeygenArgs {
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `islet policy sign`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicySignArgs {
    /// The secret key (`policy.key`).
    #[arg(long)]
    pub key: PathBuf,
    /// The bundle's version: a sensor accepts only versions not below the active one.
    #[arg(long)]
    pub version: u64,
    /// Valid from (RFC 3339; default now).
    #[arg(long)]
    pub not_before: Option<String>,
    /// Valid until (RFC 3339; default `--valid-days` after the start).
    #[arg(long)]
    pub not_after: Option<String>,
    #[arg(long, default_value_t = 365)]
    pub valid_days: u32,
    pub bundle: PathBuf,
}

/// Arguments of `islet policy verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyVerifyArgs {
    /// Pinned public keys (`policy.pub`); the bundle must be signed by one of them.
    #[arg(long = "pubkey", required = true)]
    pub pubkeys: Vec<PathBuf>,
    /// A sensor's policy state directory: the bundle must not be older than the active one,
    /// and becomes the active one if valid.
    #[arg(long)]
    pub state: Option<PathBuf>,
    pub bundle: PathBuf,
}

/// Arguments of `islet policy check`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyCheckArgs {
    /// A bundle directory or one policy file.
    pub policy: PathBuf,
    /// An inventory, to find rules that select no workload.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
}

/// Arguments of `islet policy show`.
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyShowArgs {
    pub policy: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IntelCommand {
    /// Import sources (MISP event JSON, MISP feed folders, STIX bundles, plain lists) and
    /// report what was imported, suppressed by warninglists, or rejected and why.
    Import(IntelImportArgs),
    /// Describe a snapshot: indicators by type, feeds, warninglist suppressions.
    Stats(IntelStatsArgs),
    /// Say which indicators match each value, and why.
    Check(IntelCheckArgs),
    /// Write N synthetic indicators as a MISP CSV export (benchmarks: a mix of addresses,
    /// CIDRs, domains, URLs and fingerprints).
    Synth(IntelSynthArgs),
}

/// Arguments of `islet intel synth`.
#[derive(Debug, clap::Args)]
pub(crate) struct IntelSynthArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// Arguments of `islet intel import`.
#[derive(Debug, clap::Args)]
pub(crate) struct IntelImportArgs {
    /// Sources: files or folders.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// MISP warninglists (`list.json` files or folders of them) that suppress indicators.
    #[arg(long = "warninglist")]
    pub warninglists: Vec<PathBuf>,
    /// Write the compiled snapshot here.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Arguments of `islet intel stats`.
#[derive(Debug, clap::Args)]
pub(crate) struct IntelStatsArgs {
    /// A snapshot written by `islet intel import -o`.
    pub snapshot: PathBuf,
}

/// Arguments of `islet intel check`.
#[derive(Debug, clap::Args)]
pub(crate) struct IntelCheckArgs {
    /// Values: addresses, names, URLs, fingerprints, user agents.
    #[arg(required = true)]
    pub values: Vec<String>,
    /// Intelligence to check against (sources or a snapshot).
    #[arg(long, required = true)]
    pub intel: Vec<PathBuf>,
    /// MISP warninglists applied while importing.
    #[arg(long = "warninglist")]
    pub warninglists: Vec<PathBuf>,
}

/// What `islet read` and `islet run` share: configuration, workers, judges (intel, policy)
/// and output (format, chain, Forward, metrics).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct SensorArgs {
    /// Where to write EVE JSON lines (`-` for stdout).
    #[arg(short = 'o', long = "output", default_value = "-")]
    pub output: String,
    /// Configuration file (TOML); see docs/CONFIG.md.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Community ID seed (overrides output.community_id_seed).
    #[arg(long)]
    pub community_id_seed: Option<u16>,
    /// Worker threads (0 = one per core; overrides sensor.workers).
    #[arg(short = 'w', long)]
    pub workers: Option<usize>,
    /// Most flows tracked at once (overrides flow.max_flows).
    #[arg(long)]
    pub max_flows: Option<usize>,
    /// Fewer messages (`read`: no progress bar, even on a terminal).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Threat intelligence to match (MISP JSON, feed folders, STIX, lists, snapshots).
    #[arg(long)]
    pub intel: Vec<PathBuf>,
    /// MISP warninglists applied to `--intel` sources.
    #[arg(long = "warninglist")]
    pub warninglists: Vec<PathBuf>,
    /// A policy bundle directory (or one policy file): give every flow a verdict.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Pinned public keys the policy bundle must be signed by. With none, an unsigned policy
    /// is accepted with a warning.
    #[arg(long = "pubkey")]
    pub pubkeys: Vec<PathBuf>,
    /// The inventory of workloads (islet TOML or a Kubernetes pod list).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Policy state directory (overrides policy.state_dir): the active bundle stays in force
    /// when `--policy` is rejected, and older versions are refused. `run` always keeps one when
    /// a key is pinned (by default in /var/lib/islet/policy); `read` without one cannot refuse
    /// a rollback to an older signed version (said once on stderr).
    #[arg(long = "policy-state")]
    pub policy_state: Option<PathBuf>,
    /// Record format: eve or ocsf (overrides output.format).
    #[arg(long)]
    pub format: Option<String>,
    /// Sign checkpoints with this key (`islet log keygen`; overrides output.sign_key).
    #[arg(long = "sign-key")]
    pub sign_key: Option<PathBuf>,
    /// Also send every record to this Forward receiver (host:port; `a:1,b:2` is one
    /// destination with failover). Repeatable: each destination gets every record.
    #[arg(long = "forward")]
    pub forward: Vec<String>,
    /// Shared key of the Forward handshake (overrides forward.shared_key).
    #[arg(long = "forward-shared-key")]
    pub forward_shared_key: Option<String>,
    /// Forward over TLS, trusting this CA bundle (PEM).
    #[arg(long = "forward-ca")]
    pub forward_ca: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[arg(long = "forward-cert")]
    pub forward_cert: Option<PathBuf>,
    #[arg(long = "forward-key")]
    pub forward_key: Option<PathBuf>,
    /// Framing: forward, packed or compressed.
    #[arg(long = "forward-mode")]
    pub forward_mode: Option<String>,
    /// Spool directory: records wait here when the receiver is away, and across restarts.
    #[arg(long = "forward-spool")]
    pub forward_spool: Option<PathBuf>,
    /// Bytes of records queued in memory before the spool is used.
    #[arg(long = "forward-memory")]
    pub forward_memory: Option<usize>,
    /// When memory and spool are full: block or drop_newest.
    #[arg(long = "forward-on-full")]
    pub forward_on_full: Option<String>,
    /// Keep the chain head here so the next run continues the chain (overrides
    /// output.state_dir).
    #[arg(long = "state-dir")]
    pub state_dir: Option<PathBuf>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9911.
    #[arg(long)]
    pub metrics: Option<String>,
}

/// Arguments of `islet read`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ReadArgs {
    /// Capture files, read in order as one stream.
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
    /// Only read the capture and touch each packet: no decoding, no output. Measures the raw
    /// read floor that throughput is compared with (docs/PERFORMANCE.md).
    #[arg(long)]
    pub raw_floor: bool,
    /// Skip a corrupt pcapng block (resuming at the next block whose length checks out) with a
    /// warning, instead of stopping with exit 2.
    #[arg(long = "keep-going")]
    pub keep_going: bool,
    #[command(flatten)]
    pub sensor: SensorArgs,
}

/// Arguments of `islet run`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Validate the configuration, interfaces, privileges, policy and intel, then exit.
    #[arg(long = "check-config")]
    pub check_config: bool,
    /// Bridge two interfaces inline (IFA,IFB); repeatable for more pairs.
    #[arg(long)]
    pub inline: Vec<String>,
    /// Monitor interfaces (IF[,IF…]).
    #[arg(long)]
    pub tap: Vec<String>,
    /// Capture backend: afpacket or afxdp.
    #[arg(long)]
    pub backend: Option<String>,
    /// Print the performance-to-protection line on stderr every this many seconds, and write
    /// a `stats` record as often (overrides live.stats_interval).
    #[arg(long = "stats-interval")]
    pub stats_interval: Option<u64>,
    /// After opening the sockets, become this user (overrides live.user).
    #[arg(long)]
    pub user: Option<String>,
    /// Do not program tc flower rules for denied flows.
    #[arg(long = "no-offload")]
    pub no_offload: bool,
    #[command(flatten)]
    pub sensor: SensorArgs,
}

/// Arguments of `islet synth`.
#[derive(Debug, clap::Args)]
pub(crate) struct SynthArgs {
    /// Output pcap file.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Scenario profile: mixed (benign data-centre traffic), or an attack: scan, syn-flood,
    /// syn-flood-spoofed, udp-flood, lateral, slp, ioc (docs/DETECTION.md). Attacks ignore
    /// --hosts, --flows and --duration; --packets sizes the floods.
    #[arg(long, default_value = "mixed")]
    pub profile: String,
    /// With --profile ioc: also write the MISP event naming its indicators to this file.
    #[arg(long = "misp-event")]
    pub misp_event: Option<PathBuf>,
    /// Number of hosts.
    #[arg(long, default_value_t = 64)]
    pub hosts: u32,
    /// Number of flows.
    #[arg(long, default_value_t = 2000)]
    pub flows: u64,
    /// Stop after this many packets (0 = when the flows are done).
    #[arg(long, default_value_t = 0)]
    pub packets: u64,
    /// Capture duration in seconds over which flows start.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Random seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `islet demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Folder for the scenario capture and eve.json.
    #[arg(long, default_value = "islet-demo")]
    pub dir: PathBuf,
    /// Number of flows in the scenario.
    #[arg(long, default_value_t = 3000)]
    pub flows: u64,
    /// The console's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Exit once the evidence is in the console, instead of serving it until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
}

/// Arguments of `islet serve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// The console's data directory (the SQLite store).
    #[arg(long, default_value = "islet-data")]
    pub data: PathBuf,
    /// Address of the console (API and web UI).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address of the Forward receiver ("off": none).
    #[arg(long = "forward-listen", default_value = "127.0.0.1:24224")]
    pub forward_listen: String,
    /// Require the Forward shared-key handshake with this key (the PING hostname then names
    /// the sensor). Prefer --forward-key-file: a command line is visible to every local user.
    #[arg(long = "forward-shared-key")]
    pub forward_shared_key: Option<String>,
    /// File holding the Forward shared key (its first line).
    #[arg(long = "forward-key-file", conflicts_with = "forward_shared_key")]
    pub forward_key_file: Option<PathBuf>,
    /// Serve the Forward receiver without a shared key: anyone who reaches it can write
    /// evidence. Accepted only on a loopback address.
    #[arg(long = "forward-unauthenticated")]
    pub forward_unauthenticated: bool,
    /// PEM certificate chain: the console and the Forward receiver speak TLS.
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// EVE files to ingest (each file's stem names its sensor).
    #[arg(long)]
    pub ingest: Vec<PathBuf>,
    /// Keep reading --ingest files as they grow (rotation is followed).
    #[arg(long)]
    pub follow: bool,
    /// Workload inventory (islet TOML or a Kubernetes pod list): names and labels of the ends.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// A critical asset (CIDR, address, namespace/name or label=value); repeatable.
    #[arg(long)]
    pub critical: Vec<String>,
    /// A sensor's public key, NAME=PATH: its checkpoints are verified; repeatable.
    #[arg(long = "sensor-key")]
    pub sensor_keys: Vec<String>,
    /// Alerts sharing an observable within this many seconds share a case.
    #[arg(long = "case-window", default_value_t = 3600)]
    pub case_window: u64,
    /// Configuration file: [console] with thehive, misp and retention (docs/CONSOLE.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Exit once the --ingest files are read (no following).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServeCommand {
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write a sensor's records as the store keeps them — byte for byte as the sensor sealed
    /// them, in chain order — for `islet log verify --key sensor.pub`.
    Records(RecordsArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RecordsArgs {
    #[arg(long, default_value = "islet-data")]
    pub data: PathBuf,
    /// The sensor's name (as the console lists it).
    #[arg(long)]
    pub sensor: String,
    /// Only records after this sequence number.
    #[arg(long = "after-seq", default_value_t = 0)]
    pub after_seq: u64,
    /// Where to write them (`-` for stdout).
    #[arg(short = 'o', long = "output", default_value = "-")]
    pub output: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it on stdout (shown once; the store keeps its argon2 hash).
    Create(TokenCreateArgs),
    /// List tokens (id, role, name, created, revoked).
    List(TokenListArgs),
    /// Revoke a token by id.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenCreateArgs {
    #[arg(long, default_value = "islet-data")]
    pub data: PathBuf,
    /// viewer (read), analyst (triage), admin (tokens and configuration).
    #[arg(long)]
    pub role: String,
    /// Who holds it (shown in the audit log).
    #[arg(long, default_value = "")]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenListArgs {
    #[arg(long, default_value = "islet-data")]
    pub data: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TokenRevokeArgs {
    #[arg(long, default_value = "islet-data")]
    pub data: PathBuf,
    pub id: String,
}

pub(crate) fn main() -> Result<(), Failure> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            if usage {
                return Err(Failure::Input("bad usage (see --help)".into()));
            }
            return Ok(());
        }
    };
    match cli.command {
        Command::Read(a) => crate::read::run(&a).map(|_| ()),
        Command::Run(a) => crate::run::run(&a),
        Command::Synth(a) => crate::synth::run(&a),
        Command::Demo(a) => crate::demo::run(&a),
        Command::Serve(a) => crate::serve::run(&a),
        Command::Intel(IntelCommand::Import(a)) => crate::intel::import(&a),
        Command::Intel(IntelCommand::Stats(a)) => crate::intel::stats(&a),
        Command::Intel(IntelCommand::Check(a)) => crate::intel::check(&a),
        Command::Intel(IntelCommand::Synth(a)) => crate::intel::synth(&a),
        Command::Policy(PolicyCommand::Keygen(a)) => crate::policy::keygen(&a),
        Command::Policy(PolicyCommand::Sign(a)) => crate::policy::sign(&a),
        Command::Policy(PolicyCommand::Verify(a)) => crate::policy::verify(&a),
        Command::Policy(PolicyCommand::Check(a)) => crate::policy::check(&a),
        Command::Policy(PolicyCommand::Show(a)) => crate::policy::show(&a),
        Command::Policy(PolicyCommand::Simulate(a)) => crate::policy::simulate(&a),
        Command::Policy(PolicyCommand::Suggest(a)) => crate::suggest::suggest(&a),
        Command::Log(LogCommand::Keygen(a)) => crate::log::keygen(&a),
        Command::Log(LogCommand::Verify(a)) => crate::log::verify(&a),
        Command::Log(LogCommand::Receive(a)) => crate::log::receive(&a),
    }
}
