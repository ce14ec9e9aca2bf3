//! `orderflow` — the operator's tool. Every subcommand talks to AWS (or the emulator named by
//! `AWS_ENDPOINT_URL`) through the same adapters the functions use.
//!
//! ```text
//! orderflow create-tables                       create the tables (skips existing ones)
//! orderflow catalogue load FILE                 load a catalogue file into the catalogue table
//! orderflow token --user NAME [--group G]       sign a user in (created in group G, default
//!                                               customers, if new) and print its access token
//! orderflow demo                                place demo orders in the store, print their timelines
//! orderflow demo --api URL [--inbox QUEUE]      the whole story through a running stack's HTTP API
//! orderflow load --api URL [--orders N] [--concurrency C] [--rate R]
//!                                               N orders through the HTTP API, C in flight, R/s at
//!                                               most; prints latency percentiles and throughput
//! orderflow rebuild-views [--into TABLE]        project every stored event into the views table
//! orderflow republish --from T --to T           publish stored events of [from, to) to the bus again
//! ```
//!
//! Table and bus names come from `EVENTS_TABLE`, `IDEMPOTENCY_TABLE`, `VIEWS_TABLE`,
//! `CATALOGUE_TABLE` and `EVENT_BUS_NAME` (defaults: the `dev` stage names of `template.yaml`); the
//! user pool is the stage's (`ORDERFLOW_STAGE`, default `dev`). The API demo and the load sign in
//! their users (`demo-customer`, `demo-courier`, `load-customer`) and send access tokens. The API demo reads
//! notifications from `--inbox QUEUE`, by default `<topic>-inbox` for the topic `TOPIC_ARN` names.

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use chrono::{DateTime, Utc};
use shared::adapters::dynamo::{DynamoEventStore, tables};
use shared::adapters::dynamo_catalogue::DynamoCatalogue;
use shared::adapters::dynamo_views::DynamoOrderViews;
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::domain::catalogue::parse_catalogue;
use shared::identity::Group;
use shared::ports::Catalogue;
use tools::demo_api::SignedIn;
use tools::identity::Identity;
use tools::load::Settings;
use tools::replay::{Progress, rebuild_views, republish};

const USAGE: &str = "usage: orderflow <create-tables | catalogue load FILE | token --user NAME [--group customers|couriers|support] | demo [--api URL [--inbox QUEUE]] | load --api URL [--orders N] [--concurrency C] [--rate R] | soak --api URL [--orders N] [--concurrency C] [--seed S] [--read-dynamodb URL] [--read-sqs URL] [--journal FILE] [--proxy-stats URL] [--fault-stats FILE] [--log FILE]... [--poison K] | rebuild-views [--into TABLE] | republish --from RFC3339 --to RFC3339>";

struct Names {
    events: String,
    idempotency: String,
    views: String,
    catalogue: String,
    bus: String,
    stage: String,
}

impl Names {
    fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Self {
            events: var("EVENTS_TABLE", "orderflow-dev-events"),
            idempotency: var("IDEMPOTENCY_TABLE", "orderflow-dev-idempotency"),
            views: var("VIEWS_TABLE", "orderflow-dev-views"),
            catalogue: var("CATALOGUE_TABLE", "orderflow-dev-catalogue"),
            bus: var("EVENT_BUS_NAME", "orderflow-dev-bus"),
            stage: var("ORDERFLOW_STAGE", "dev"),
        }
    }
}

/// The value after `--name`, if given.
fn option(args: &[String], name: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(at) => match args.get(at + 1) {
            Some(value) if !value.starts_with("--") => Ok(Some(value.clone())),
            _ => bail!("{name} needs a value\n{USAGE}"),
        },
    }
}

/// The number after `--name`, if given.
fn number<T>(args: &[String], name: &str) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    option(args, name)?
        .map(|raw| {
            raw.parse()
                .with_context(|| format!("{name} {raw:?} is not a number\n{USAGE}"))
        })
        .transpose()
}

/// `orderflow load`'s settings; refuses options it does not know (a typo would change the figures).
fn load_settings(args: &[String]) -> Result<Settings> {
    const KNOWN: [&str; 4] = ["--api", "--orders", "--concurrency", "--rate"];
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with("--") && !KNOWN.contains(&a.as_str()))
    {
        bail!("orderflow load does not know {unknown}\n{USAGE}");
    }
    let defaults = Settings::default();
    Ok(Settings {
        orders: number(args, "--orders")?.unwrap_or(defaults.orders),
        concurrency: number(args, "--concurrency")?.unwrap_or(defaults.concurrency),
        rate: number(args, "--rate")?,
    })
}

/// `orderflow soak`'s options; refuses options it does not know.
fn soak_options(args: &[String], names: &Names) -> Result<tools::soak::stack::Options> {
    const KNOWN: [&str; 12] = [
        "--poison",
        "--api",
        "--orders",
        "--concurrency",
        "--seed",
        "--read-dynamodb",
        "--read-sqs",
        "--journal",
        "--proxy-stats",
        "--fault-stats",
        "--log",
        "--topic-arn",
    ];
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with("--") && !KNOWN.contains(&a.as_str()))
    {
        bail!("orderflow soak does not know {unknown}\n{USAGE}");
    }
    let logs = args
        .windows(2)
        .filter(|pair| pair[0] == "--log")
        .map(|pair| std::path::PathBuf::from(&pair[1]))
        .collect();
    let topic_arn = match option(args, "--topic-arn")? {
        Some(arn) => arn,
        None => {
            std::env::var("TOPIC_ARN").context("TOPIC_ARN (the customers' topic) is not set")?
        }
    };
    Ok(tools::soak::stack::Options {
        api: option(args, "--api")?.with_context(|| format!("--api is required\n{USAGE}"))?,
        settings: tools::soak::Settings {
            orders: number(args, "--orders")?.unwrap_or(200),
            concurrency: number(args, "--concurrency")?.unwrap_or(16),
            seed: number(args, "--seed")?.unwrap_or(1),
        },
        stage: names.stage.clone(),
        events_table: names.events.clone(),
        views_table: names.views.clone(),
        idempotency_table: names.idempotency.clone(),
        topic_arn,
        read_dynamodb: option(args, "--read-dynamodb")?,
        read_sqs: option(args, "--read-sqs")?,
        journal: option(args, "--journal")?.map(std::path::PathBuf::from),
        proxy_stats: option(args, "--proxy-stats")?,
        fault_stats: option(args, "--fault-stats")?.map(std::path::PathBuf::from),
        logs,
        poison: number(args, "--poison")?.unwrap_or(0),
    })
}

fn instant(args: &[String], name: &str) -> Result<DateTime<Utc>> {
    let raw = option(args, name)?.with_context(|| format!("{name} is required\n{USAGE}"))?;
    Ok(DateTime::parse_from_rfc3339(&raw)
        .with_context(|| format!("{name} {raw:?} is not an RFC 3339 time"))?
        .with_timezone(&Utc))
}

fn show(progress: &Progress) {
    eprintln!("  {progress}");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().cloned().unwrap_or_default();
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let names = Names::from_env();
    let store = DynamoEventStore::new(dynamodb.clone(), &names.events, &names.idempotency);
    match command.as_str() {
        "create-tables" => create_tables(&dynamodb, &names).await,
        "demo" => match option(&args, "--api")? {
            Some(api) => {
                let inbox = option(&args, "--inbox")?.or_else(|| {
                    let topic = std::env::var("TOPIC_ARN").ok()?;
                    Some(format!("{}-inbox", topic.rsplit(':').next()?))
                });
                let inbox = inbox.map(|queue_name| tools::demo_api::Inbox {
                    sqs: aws_sdk_sqs::Client::new(&config),
                    queue_name,
                });
                let identity = Identity::discover(&config, &names.stage).await?;
                let customer = signed_in(&identity, "demo-customer", Group::Customers).await?;
                let courier = signed_in(&identity, "demo-courier", Group::Couriers).await?;
                tools::demo_api::demo(&api, inbox, &customer, &courier).await
            }
            None => tools::demo::demo(&store).await,
        },
        "load" => {
            let api =
                option(&args, "--api")?.with_context(|| format!("--api is required\n{USAGE}"))?;
            let settings = load_settings(&args)?;
            let identity = Identity::discover(&config, &names.stage).await?;
            let customer = signed_in(&identity, "load-customer", Group::Customers).await?;
            tools::load::load(&api, settings, &customer).await
        }
        "soak" => {
            let options = soak_options(&args, &names)?;
            let report = tools::soak::stack::soak(&config, &options).await?;
            // The figures are the command's output.
            #[allow(clippy::print_stdout)]
            {
                print!("{report}");
            }
            if !report.violations.is_empty() {
                bail!("the soak found {} violation(s)", report.violations.len());
            }
            if report.lifecycles.values().sum::<u64>() == 0 {
                bail!("the soak drove no order through its lifecycle");
            }
            Ok(())
        }
        "catalogue" => {
            let file = match args.get(1).map(String::as_str) {
                Some("load") => args
                    .get(2)
                    .with_context(|| format!("a FILE is required\n{USAGE}"))?,
                _ => bail!("{USAGE}"),
            };
            load_catalogue(dynamodb, &names.catalogue, file).await
        }
        "token" => {
            let user =
                option(&args, "--user")?.with_context(|| format!("--user is required\n{USAGE}"))?;
            let group = match option(&args, "--group")?.as_deref() {
                None => Group::Customers,
                Some(name) => Group::from_name(name).with_context(|| {
                    format!("--group {name:?} is not customers, couriers or support")
                })?,
            };
            let identity = Identity::discover(&config, &names.stage).await?;
            let signed_in = signed_in(&identity, &user, group).await?;
            eprintln!(
                "{user} ({group}) is {}; the access token follows",
                signed_in.subject
            );
            // The token is the command's output, for `TOKEN=$(orderflow token …)`.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", signed_in.access_token);
            }
            Ok(())
        }
        "rebuild-views" => {
            let table = option(&args, "--into")?.unwrap_or(names.views);
            eprintln!("rebuilding order views in {table} from {}", names.events);
            let views = DynamoOrderViews::new(dynamodb, &table);
            let done = rebuild_views(&store, &views, show).await?;
            eprintln!("done: {done}");
            Ok(())
        }
        "republish" => {
            let (from, to) = (instant(&args, "--from")?, instant(&args, "--to")?);
            eprintln!("republishing events of [{from}, {to}) to {}", names.bus);
            let publisher =
                EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &names.bus);
            let done = republish(&store, &publisher, from, to, show).await?;
            eprintln!("done: {done}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// Signs `username` in, creating it in `group` first if it is new.
async fn signed_in(identity: &Identity, username: &str, group: Group) -> Result<SignedIn> {
    let subject = identity.ensure_user(username, group.name()).await?;
    let tokens = identity.sign_in(username).await?;
    Ok(SignedIn {
        subject,
        access_token: tokens.access_token,
    })
}

/// Loads the catalogue file at `path` into `table`.
async fn load_catalogue(client: aws_sdk_dynamodb::Client, table: &str, path: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let entries = parse_catalogue(&text).with_context(|| path.to_owned())?;
    DynamoCatalogue::new(client, table)
        .put_entries(&entries)
        .await
        .with_context(|| format!("writing {table}"))?;
    let active = entries.iter().filter(|e| e.active).count();
    eprintln!(
        "loaded {} SKUs ({active} active) from {path} into {table}",
        entries.len()
    );
    Ok(())
}

async fn create_tables(client: &aws_sdk_dynamodb::Client, names: &Names) -> Result<()> {
    let existing = client
        .list_tables()
        .send()
        .await
        .context("listing tables")?
        .table_names
        .unwrap_or_default();
    for (name, kind) in [
        (&names.events, "events"),
        (&names.idempotency, "idempotency"),
        (&names.views, "views"),
        (&names.catalogue, "catalogue"),
    ] {
        if existing.contains(name) {
            eprintln!("table {name} exists");
            continue;
        }
        match kind {
            "events" => tables::create_events_table(client, name).await.map(drop),
            "idempotency" => tables::create_idempotency_table(client, name).await,
            "catalogue" => tables::create_catalogue_table(client, name).await,
            _ => tables::create_views_table(client, name).await,
        }
        .with_context(|| format!("creating {name}"))?;
        eprintln!("created table {name} ({kind})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn load_settings_default_what_is_not_given() {
        let settings = load_settings(&args("load --api http://127.0.0.1:1 --concurrency 8"));
        assert_eq!(
            settings.ok(),
            Some(Settings {
                orders: 200,
                concurrency: 8,
                rate: None
            })
        );
        let paced = load_settings(&args("load --api A --orders 300 --rate 2.5"));
        assert_eq!(
            paced.ok().map(|s| (s.orders, s.rate)),
            Some((300, Some(2.5)))
        );
    }

    #[test]
    fn load_settings_refuse_typos_and_non_numbers() {
        for line in [
            "load --api A --concurency 8",
            "load --api A --orders many",
            "load --api A --orders -5",
            "load --api A --rate",
        ] {
            assert!(load_settings(&args(line)).is_err(), "{line}");
        }
    }
}
