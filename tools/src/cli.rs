//! `orderflow`'s command line, as `clap` parses it: every command, its options, their types and
//! environment defaults. `main` only dispatches; the parsing is tested here, without AWS.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::identity::Group;

/// The operator's tool for an orderflow stage: tables, catalogue, users, the demo, load and soak
/// runs, replays, an order's story and the dead-letter queues.
///
/// It talks to AWS, or to the emulator `AWS_ENDPOINT_URL` names, with the usual AWS credentials
/// and region (profiles and SSO included). Tables, bus and user pool are the stage's.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, propagate_version = true)]
pub struct Cli {
    /// The stage's resource names.
    #[command(flatten)]
    pub names: NameArgs,
    /// Print the result as JSON on stdout (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The stage and the names of its tables and bus; each name defaults to the stage's
/// (`orderflow-<stage>-events`, …), as `template.yaml` names them.
#[derive(Debug, Clone, Args)]
pub struct NameArgs {
    /// The stage (`template.yaml`'s `Stage`).
    #[arg(long, env = "ORDERFLOW_STAGE", default_value = "dev", global = true)]
    pub stage: String,
    /// The events table [default: orderflow-<stage>-events].
    #[arg(long, env = "EVENTS_TABLE", global = true, value_name = "TABLE")]
    pub events_table: Option<String>,
    /// The idempotency table [default: orderflow-<stage>-idempotency].
    #[arg(long, env = "IDEMPOTENCY_TABLE", global = true, value_name = "TABLE")]
    pub idempotency_table: Option<String>,
    /// The order views table [default: orderflow-<stage>-views].
    #[arg(long, env = "VIEWS_TABLE", global = true, value_name = "TABLE")]
    pub views_table: Option<String>,
    /// The catalogue table [default: orderflow-<stage>-catalogue].
    #[arg(long, env = "CATALOGUE_TABLE", global = true, value_name = "TABLE")]
    pub catalogue_table: Option<String>,
    /// The event bus [default: orderflow-<stage>-bus].
    #[arg(long, env = "EVENT_BUS_NAME", global = true, value_name = "BUS")]
    pub event_bus: Option<String>,
}

/// The names every command works with, the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The stage.
    pub stage: String,
    /// The events table.
    pub events: String,
    /// The idempotency table.
    pub idempotency: String,
    /// The order views table.
    pub views: String,
    /// The catalogue table.
    pub catalogue: String,
    /// The event bus.
    pub bus: String,
}

impl NameArgs {
    /// The names, each given one or the stage's.
    pub fn resolve(&self) -> Names {
        let stage = &self.stage;
        let or_stage = |given: &Option<String>, suffix: &str| {
            given
                .clone()
                .unwrap_or_else(|| format!("orderflow-{stage}-{suffix}"))
        };
        Names {
            stage: stage.clone(),
            events: or_stage(&self.events_table, "events"),
            idempotency: or_stage(&self.idempotency_table, "idempotency"),
            views: or_stage(&self.views_table, "views"),
            catalogue: or_stage(&self.catalogue_table, "catalogue"),
            bus: or_stage(&self.event_bus, "bus"),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the stage's tables (those that exist are left as they are).
    CreateTables,
    /// The catalogue table.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
    /// Sign a user in (created in GROUP first if new) and print its access token.
    Token(TokenArgs),
    /// Place demo orders and print their stories: in the store, or through a running stack's API.
    Demo(DemoArgs),
    /// Place N orders through the HTTP API and print latency percentiles and throughput.
    Load(LoadArgs),
    /// Drive orders through their whole lifecycle against the stack and audit every invariant.
    Soak(SoakArgs),
    /// Project every stored event into the order views table again.
    RebuildViews(RebuildArgs),
    /// Publish the stored events of a time range to the bus again.
    Republish(RepublishArgs),
    /// Print an order's whole story from the store: order, delivery, coupons, notifications sent.
    Order(OrderArgs),
    /// The stage's dead-letter, on-failure and poison queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Print a shell completion script (e.g. `orderflow completions bash > /etc/bash_completion.d/orderflow`).
    Completions(CompletionsArgs),
}

/// `orderflow catalogue …`.
#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Load a catalogue file (SKU, name, price, active) into the catalogue table.
    Load {
        /// The catalogue file (see `catalogue/`).
        file: PathBuf,
    },
}

/// A user pool group, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupArg {
    /// Customers: their own orders.
    Customers,
    /// Couriers: deliveries.
    Couriers,
    /// Support: reads everything.
    Support,
}

impl From<GroupArg> for Group {
    fn from(group: GroupArg) -> Self {
        match group {
            GroupArg::Customers => Group::Customers,
            GroupArg::Couriers => Group::Couriers,
            GroupArg::Support => Group::Support,
        }
    }
}

/// `orderflow token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user's name in the pool.
    #[arg(long)]
    pub user: String,
    /// The group a new user is created in.
    #[arg(long, value_enum, default_value_t = GroupArg::Customers)]
    pub group: GroupArg,
}

/// `orderflow demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The stack's HTTP API; without it the demo writes to the store directly.
    #[arg(long, env = "ORDERFLOW_API", value_name = "URL")]
    pub api: Option<String>,
    /// The queue the customers' topic feeds [default: <topic name>-inbox, from TOPIC_ARN].
    #[arg(long, value_name = "QUEUE")]
    pub inbox: Option<String>,
    /// The customers' topic.
    #[arg(long, env = "TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: Option<String>,
}

/// `orderflow load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The stack's HTTP API.
    #[arg(long, env = "ORDERFLOW_API", value_name = "URL")]
    pub api: String,
    /// Orders to place.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub orders: u32,
    /// Requests of each kind in flight at most.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Orders started per second at most [default: as fast as the concurrency allows].
    #[arg(long, value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `orderflow soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The stack's HTTP API.
    #[arg(long, env = "ORDERFLOW_API", value_name = "URL")]
    pub api: String,
    /// Orders to drive.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub orders: u32,
    /// Orders in flight at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// The seed of every random choice (the same seed, the same run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// DynamoDB's endpoint around the chaos proxy, for the audit's reads.
    #[arg(long, value_name = "URL")]
    pub read_dynamodb: Option<String>,
    /// SQS's and SNS's endpoint around the chaos proxy, for the audit's reads.
    #[arg(long, value_name = "URL")]
    pub read_sqs: Option<String>,
    /// The chaos proxy's journal.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// The chaos proxy's stats URL.
    #[arg(long, value_name = "URL")]
    pub proxy_stats: Option<String>,
    /// The bridge's fault counts.
    #[arg(long, value_name = "FILE")]
    pub fault_stats: Option<PathBuf>,
    /// A log to search for panics (repeatable).
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// Poison records to write into the events table.
    #[arg(long, default_value_t = 0)]
    pub poison: u32,
    /// The customers' topic.
    #[arg(long, env = "TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: String,
    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `orderflow rebuild-views`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Project into this table instead of the stage's views table (a fresh one to switch to).
    #[arg(long, value_name = "TABLE")]
    pub into: Option<String>,
}

/// `orderflow republish`.
#[derive(Debug, Args)]
pub struct RepublishArgs {
    /// The first instant of the range (RFC 3339, e.g. 2026-12-01T10:00:00Z).
    #[arg(long, value_parser = instant)]
    pub from: DateTime<Utc>,
    /// The end of the range, not included (RFC 3339).
    #[arg(long, value_parser = instant)]
    pub to: DateTime<Utc>,
}

/// `orderflow order`.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The order's id (as `POST /orders` answered it).
    pub id: String,
}

/// `orderflow dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Every dead-letter, on-failure and poison queue of the stage: depth, oldest message.
    List,
    /// The messages of one queue, each decoded (event type, order, event id, receive count, why).
    Show {
        /// The queue's name (as `dlq list` prints it) or URL.
        queue: String,
        /// Messages to show at most.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Send the queue's messages back to where they failed: a dead-letter queue's to its source
    /// queue; a stream failure's or poison record's events to the bus (event publisher) or the
    /// views (projector).
    Redrive {
        /// The queue's name (as `dlq list` prints it) or URL.
        queue: String,
        /// How to move a dead-letter queue's messages.
        #[arg(long, value_enum, default_value_t = MoveMethod::Auto)]
        method: MoveMethod,
        /// Messages per second at most, so a consumer that just recovered is not flooded
        /// [default: as fast as SQS takes them].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=500))]
        rate: Option<u32>,
    },
}

/// How `dlq redrive` moves a dead-letter queue's messages to their source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MoveMethod {
    /// SQS's message move task where the service has it, else copy.
    Auto,
    /// SQS's message move task (`StartMessageMoveTask`) only.
    MoveTask,
    /// Receive, send to the source, delete — one message at a time.
    Copy,
}

/// `orderflow completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

fn positive_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!(
            "{raw} is not a positive number of orders per second"
        ))
    }
}

fn instant(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{raw:?} is not an RFC 3339 time ({e})"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("orderflow").chain(line.split_whitespace()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_defaults_what_is_not_given() {
        let cli = parse("load --api http://127.0.0.1:1 --concurrency 8").ok();
        let Some(Cli {
            command: Command::Load(load),
            json: false,
            ..
        }) = cli
        else {
            panic!("not a load: {cli:?}");
        };
        assert_eq!(
            (load.api.as_str(), load.orders, load.concurrency, load.rate),
            ("http://127.0.0.1:1", 200, 8, None)
        );
        let paced = parse("load --api A --orders 300 --rate 2.5 --report r.html").ok();
        let Some(Cli {
            command: Command::Load(load),
            ..
        }) = paced
        else {
            panic!("not a load: {paced:?}");
        };
        assert_eq!(
            (load.orders, load.rate, load.report),
            (300, Some(2.5), Some(PathBuf::from("r.html")))
        );
    }

    #[test]
    fn typos_and_bad_values_are_refused_naming_the_option() {
        for (line, kind, names) in [
            (
                "load --api A --concurency 8",
                ErrorKind::UnknownArgument,
                "--concurency",
            ),
            (
                "load --api A --orders many",
                ErrorKind::ValueValidation,
                "--orders",
            ),
            (
                "load --api A --orders 0",
                ErrorKind::ValueValidation,
                "--orders",
            ),
            ("load --api A --orders -5", ErrorKind::UnknownArgument, "-5"),
            ("load --api A --rate", ErrorKind::InvalidValue, "--rate"),
            ("load --api A --rate -1", ErrorKind::UnknownArgument, "-1"),
            (
                "load --api A --rate 0",
                ErrorKind::ValueValidation,
                "--rate",
            ),
            (
                "republish --from yesterday --to 2026-12-01T00:00:00Z",
                ErrorKind::ValueValidation,
                "--from",
            ),
            (
                "token --user u --group admins",
                ErrorKind::InvalidValue,
                "--group",
            ),
            (
                "dlq show q --limit 0",
                ErrorKind::ValueValidation,
                "--limit",
            ),
            (
                "dlq redrive q --method teleport",
                ErrorKind::InvalidValue,
                "--method",
            ),
            ("dlq purge q", ErrorKind::InvalidSubcommand, "purge"),
            ("order", ErrorKind::MissingRequiredArgument, "<ID>"),
        ] {
            let error = parse(line).err();
            assert_eq!(error.as_ref().map(clap::Error::kind), Some(kind), "{line}");
            let text = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(text.contains(names), "{line}: {text}");
        }
    }

    #[test]
    fn names_default_to_the_stage_and_can_be_given_one_by_one() {
        let cli = parse("--stage prod order o-1 --views-table other").ok();
        let names = cli.as_ref().map(|c| c.names.resolve());
        assert_eq!(
            names,
            Some(Names {
                stage: "prod".into(),
                events: "orderflow-prod-events".into(),
                idempotency: "orderflow-prod-idempotency".into(),
                views: "other".into(),
                catalogue: "orderflow-prod-catalogue".into(),
                bus: "orderflow-prod-bus".into(),
            })
        );
        assert!(matches!(
            cli.map(|c| c.command),
            Some(Command::Order(OrderArgs { id })) if id == "o-1"
        ));
    }

    #[test]
    fn json_is_accepted_after_any_command() {
        for line in ["--json dlq list", "dlq list --json", "order o-1 --json"] {
            assert!(parse(line).is_ok_and(|cli| cli.json), "{line}");
        }
    }

    #[test]
    fn every_command_has_help_naming_its_environment_defaults() {
        let mut root = Cli::command();
        let help = root.render_long_help().to_string();
        for shown in ["[env: ORDERFLOW_STAGE=", "[default: dev]", "EVENTS_TABLE"] {
            assert!(help.contains(shown), "{shown} not in\n{help}");
        }
        for command in root.get_subcommands_mut() {
            let name = command.get_name().to_owned();
            assert!(
                command.get_about().is_some(),
                "orderflow {name} has no description"
            );
            let text = command.render_long_help().to_string();
            assert!(text.contains("Usage: "), "orderflow {name}:\n{text}");
        }
        let load = root
            .find_subcommand_mut("load")
            .map(|c| c.render_long_help().to_string());
        assert!(load.is_some_and(|text| text.contains("[env: ORDERFLOW_API=")));
    }

    #[test]
    fn completions_are_generated_for_the_shells() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "orderflow", &mut script);
            let script = String::from_utf8_lossy(&script);
            assert!(script.contains("redrive"), "{shell}: {script}");
        }
    }
}
