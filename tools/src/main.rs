//! `orderflow` — the operator's tool. Every command talks to AWS (or the emulator named by
//! `AWS_ENDPOINT_URL`) through the same adapters the functions use; `orderflow --help` and
//! `orderflow <command> --help` describe them ([`tools::cli`] defines them), the README's
//! "Operating it" shows each with its output.

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_catalogue::DynamoCatalogue;
use adapters::dynamo_views::DynamoOrderViews;
use adapters::eventbridge::EventBridgePublisher;
use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use bridge::identity::Identity;
use clap::{CommandFactory, Parser};
use domain::catalogue::parse_catalogue;
use domain::identity::Group;
use domain::ports::Catalogue;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tools::cli::{CatalogueCommand, Cli, Command, DemoArgs, DlqCommand, LoadArgs, Names, SoakArgs};
use tools::demo_api::SignedIn;
use tools::dlq::ops::{Moved, Queues};
use tools::dlq::redrive::Replay;
use tools::dlq::{QueueKind, QueueSummary};
use tools::load::Settings;
use tools::progress::Progress;
use tools::replay::{rebuild_views, republish};

/// What a command prints on stdout: `value` as JSON under `--json`, else `text`.
#[allow(clippy::print_stdout)]
fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// Cancelled on SIGINT or SIGTERM: a long run finishes what it holds, then stops.
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        bridge::signal::stop_requested().await;
        cancel.cancel();
    });
    stop
}

/// Runs the command; an error is one paragraph on stderr (its causes after colons, no backtrace:
/// the operator reads it) and exit status 1. Usage errors are clap's (status 2).
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Completions(args) = &cli.command {
        clap_complete::generate(
            args.shell,
            &mut Cli::command(),
            "orderflow",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let names = cli.names.resolve();
    let json = cli.json;
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let store = DynamoEventStore::new(dynamodb.clone(), &names.events, &names.idempotency);
    match cli.command {
        Command::Completions(_) => Ok(()),
        Command::CreateTables => {
            let created = create_tables(&dynamodb, &names).await?;
            print(json, &created, || {
                created
                    .iter()
                    .map(|t| {
                        format!(
                            "{:<40} {} ({})",
                            t.name,
                            if t.created { "created" } else { "exists" },
                            t.kind
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Catalogue(CatalogueCommand::Load { file }) => {
            let loaded = load_catalogue(dynamodb, &names.catalogue, &file).await?;
            print(json, &loaded, || {
                format!(
                    "loaded {} SKUs ({} active) from {} into {}",
                    loaded.skus, loaded.active, loaded.file, loaded.table
                )
            })
        }
        Command::Demo(_) if json => bail!(
            "orderflow demo tells a story for people and has no JSON output; \
             `orderflow order ID --json` gives an order's story as JSON"
        ),
        Command::Demo(args) => demo(&config, &store, &names, args).await,
        Command::Load(args) => load(&config, &names, args, json).await,
        Command::Soak(args) => soak(&config, &names, args, json).await,
        Command::Token(args) => {
            let group = Group::from(args.group);
            let identity = Identity::discover(&config, &names.stage).await?;
            let signed_in = signed_in(&identity, &args.user, group).await?;
            eprintln!("{} ({group}) is {}", args.user, signed_in.subject);
            // The token alone is the text output, for `TOKEN=$(orderflow token …)`.
            print(
                json,
                &serde_json::json!({
                    "user": args.user,
                    "group": group.name(),
                    "subject": signed_in.subject,
                    "access_token": signed_in.access_token,
                }),
                || signed_in.access_token.clone(),
            )
        }
        Command::RebuildViews(args) => {
            let table = args.into.unwrap_or(names.views);
            eprintln!("rebuilding order views in {table} from {}", names.events);
            let views = DynamoOrderViews::new(dynamodb, &table);
            let progress = Progress::stderr();
            let done = rebuild_views(&store, &views, |p| progress.update(p)).await?;
            progress.finish();
            print(json, &done, || format!("{done}"))
        }
        Command::Republish(args) => {
            if args.from >= args.to {
                bail!("--from {} is not before --to {}", args.from, args.to);
            }
            eprintln!(
                "republishing events of [{}, {}) to {}",
                args.from, args.to, names.bus
            );
            let publisher =
                EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &names.bus);
            let progress = Progress::stderr();
            let done = republish(&store, &publisher, args.from, args.to, |p| {
                progress.update(p)
            })
            .await?;
            progress.finish();
            print(json, &done, || format!("{done}"))
        }
        Command::Order(args) => {
            let story = tools::story::read(&store, &dynamodb, &names.idempotency, &args.id).await?;
            print(json, &story, || story.to_string())
        }
        Command::Dlq(command) => dlq(&config, &store, &names, command, json).await,
    }
}

async fn demo(
    config: &aws_config::SdkConfig,
    store: &DynamoEventStore,
    names: &Names,
    args: DemoArgs,
) -> Result<()> {
    let Some(api) = args.api else {
        return tools::demo::demo(store).await;
    };
    let inbox = args.inbox.or_else(|| {
        let topic = args.topic_arn?;
        Some(format!("{}-inbox", topic.rsplit(':').next()?))
    });
    let inbox = inbox.map(|queue_name| tools::demo_api::Inbox {
        sqs: aws_sdk_sqs::Client::new(config),
        queue_name,
    });
    let identity = Identity::discover(config, &names.stage).await?;
    let customer = signed_in(&identity, "demo-customer", Group::Customers).await?;
    let courier = signed_in(&identity, "demo-courier", Group::Couriers).await?;
    tools::demo_api::demo(&api, inbox, &customer, &courier).await
}

/// The figures a load or soak prints, by name, for `--json`.
fn figures_json(figures: Vec<(String, String)>) -> serde_json::Map<String, serde_json::Value> {
    figures
        .into_iter()
        .map(|(name, value)| (name.trim().to_owned(), serde_json::Value::String(value)))
        .collect()
}

async fn load(
    config: &aws_config::SdkConfig,
    names: &Names,
    args: LoadArgs,
    json: bool,
) -> Result<()> {
    let settings = Settings {
        orders: args.orders as usize,
        concurrency: args.concurrency as usize,
        rate: args.rate,
    };
    let identity = Identity::discover(config, &names.stage).await?;
    let customer = signed_in(&identity, "load-customer", Group::Customers).await?;
    let report = tools::load::measure(&args.api, settings.validated()?, &customer).await;
    print(json, &figures_json(report.figures()), || report.to_string())?;
    if let Some(path) = &args.report {
        report.write_html(path)?;
        eprintln!("load: the report is in {}", path.display());
    }
    report.verdict()
}

async fn soak(
    config: &aws_config::SdkConfig,
    names: &Names,
    args: SoakArgs,
    json: bool,
) -> Result<()> {
    let options = tools::soak::stack::Options {
        api: args.api,
        settings: tools::soak::Settings {
            orders: args.orders as usize,
            concurrency: args.concurrency as usize,
            seed: args.seed,
        },
        stage: names.stage.clone(),
        events_table: names.events.clone(),
        views_table: names.views.clone(),
        idempotency_table: names.idempotency.clone(),
        topic_arn: args.topic_arn,
        read_dynamodb: args.read_dynamodb,
        read_sqs: args.read_sqs,
        journal: args.journal,
        proxy_stats: args.proxy_stats,
        fault_stats: args.fault_stats,
        logs: args.logs,
        poison: args.poison as usize,
    };
    let report = tools::soak::stack::soak(config, &options).await?;
    print(json, &figures_json(report.figures()), || {
        report.to_string().trim_end().to_owned()
    })?;
    if let Some(path) = &args.report {
        report.write_html(&options, path)?;
        eprintln!("soak: the report is in {}", path.display());
    }
    if !report.violations.is_empty() {
        bail!("the soak found {} violation(s)", report.violations.len());
    }
    if report.lifecycles.values().sum::<u64>() == 0 {
        bail!("the soak drove no order through its lifecycle");
    }
    Ok(())
}

async fn dlq(
    config: &aws_config::SdkConfig,
    store: &DynamoEventStore,
    names: &Names,
    command: DlqCommand,
    json: bool,
) -> Result<()> {
    let queues = Queues::new(aws_sdk_sqs::Client::new(config), &names.stage);
    match command {
        DlqCommand::List => {
            let list = queues.list().await?;
            print(json, &list, || {
                let mut lines = vec![format!(
                    "{:<58} {:>6} {:>10}  {}",
                    "queue", "depth", "oldest", "holds"
                )];
                lines.extend(list.iter().map(QueueSummary::to_string));
                let total: u64 = list.iter().map(|q| q.depth).sum();
                lines.push(format!("{} queue(s), {total} message(s)", list.len()));
                lines.join("\n")
            })
        }
        DlqCommand::Show { queue, limit } => {
            let queue = queues.resolve(&queue).await?;
            let letters = queues.show(&queue, limit as usize).await?;
            print(json, &letters, || {
                let mut text = format!(
                    "{} ({}): {} message(s) shown",
                    queue.name,
                    queue.kind.label(),
                    letters.len()
                );
                for letter in &letters {
                    text.push_str(&format!("\n{letter}"));
                }
                text
            })
        }
        DlqCommand::Redrive {
            queue,
            method,
            rate,
        } => {
            let queue = queues.resolve(&queue).await?;
            let progress = Progress::stderr();
            let stop = stop_on_signal();
            let moved = match &queue.kind {
                QueueKind::DeadLetters { .. } => {
                    queues
                        .move_to_source(&queue, method, rate, &progress, &stop)
                        .await?
                }
                QueueKind::StreamFailures { .. } | QueueKind::Poison { .. } => {
                    let replay = Replay {
                        store: store.clone(),
                        streams: aws_sdk_dynamodbstreams::Client::new(config),
                        publisher: EventBridgePublisher::new(
                            aws_sdk_eventbridge::Client::new(config),
                            &names.bus,
                        ),
                        views: DynamoOrderViews::new(
                            aws_sdk_dynamodb::Client::new(config),
                            &names.views,
                        ),
                    };
                    replay.redrive(&queues, &queue, &progress, &stop).await?
                }
                QueueKind::ScheduleFailures { function } => bail!(
                    "{} holds failed runs of {function}: there is nothing to move back — its next \
                     scheduled run does the same work (read them with `orderflow dlq show`, then \
                     purge the queue)",
                    queue.name
                ),
            };
            progress.finish();
            print(json, &moved, || redrive_text(&queue.name, &moved))?;
            match moved.stopped {
                Some(why) => bail!("the redrive of {} stopped: {why}", queue.name),
                None => Ok(()),
            }
        }
    }
}

fn redrive_text(queue: &str, moved: &Moved) -> String {
    format!(
        "{queue}: {} message(s) moved by {}, {} left",
        moved.moved, moved.method, moved.left
    )
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

/// What `catalogue load` did.
#[derive(Debug, Serialize)]
struct LoadedCatalogue {
    file: String,
    table: String,
    skus: usize,
    active: usize,
}

/// Loads the catalogue file at `path` into `table`.
async fn load_catalogue(
    client: aws_sdk_dynamodb::Client,
    table: &str,
    path: &std::path::Path,
) -> Result<LoadedCatalogue> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {file}"))?;
    let entries = parse_catalogue(&text).with_context(|| file.clone())?;
    DynamoCatalogue::new(client, table)
        .put_entries(&entries)
        .await
        .with_context(|| format!("writing {table}"))?;
    Ok(LoadedCatalogue {
        file,
        table: table.to_owned(),
        skus: entries.len(),
        active: entries.iter().filter(|e| e.active).count(),
    })
}

/// One table `create-tables` dealt with.
#[derive(Debug, Serialize)]
struct Table {
    name: String,
    kind: &'static str,
    created: bool,
}

async fn create_tables(client: &aws_sdk_dynamodb::Client, names: &Names) -> Result<Vec<Table>> {
    let existing = client
        .list_tables()
        .send()
        .await
        .context("listing tables")?
        .table_names
        .unwrap_or_default();
    let mut tables = Vec::new();
    for (name, kind) in [
        (&names.events, "events"),
        (&names.idempotency, "idempotency"),
        (&names.views, "views"),
        (&names.catalogue, "catalogue"),
    ] {
        let created = !existing.contains(name);
        if created {
            // The table as template.yaml describes it (the one description of every resource),
            // under the name the stage or the operator gives it.
            let logical_id = match kind {
                "events" => "EventsTable",
                "idempotency" => "IdempotencyTable",
                "catalogue" => "CatalogueTable",
                _ => "ViewsTable",
            };
            bridge::setup::create_template_table(client, logical_id, name).await?;
        }
        tables.push(Table {
            name: name.clone(),
            kind,
            created,
        });
    }
    Ok(tables)
}
