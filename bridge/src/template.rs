//! `template.yaml` as data: the parsed document, its resources by logical id, and a resolver for
//! the CloudFormation intrinsics the template uses (`!Ref`, `!Sub`, `!GetAtt`, `!Join`), with the
//! names and ARNs the emulator will give each resource.
//!
//! YAML short forms arrive from `serde_norway` as [`Value::Tagged`]; the long forms
//! (`{"Ref": …}`, `{"Fn::Sub": …}`, `{"Fn::GetAtt": …}`, `{"Fn::Join": …}`) are understood too.
//! Attributes only the emulator knows (a table's `StreamArn`) do not resolve here: the bridge looks
//! them up at run time from the logical id, see [`Resolver::target`]. Ids the emulator assigns when
//! setup creates a resource (a Cognito user pool's id, an app client's id) resolve once they are in
//! [`Environment::assigned`]; until then [`Resolver::deferred`] keeps them as named holes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_norway::{Mapping, Value};

/// Why the template could not be read or a value not resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read or is not YAML.
    #[error("template: {0}")]
    Unreadable(String),
    /// A required property is missing or has the wrong shape.
    #[error("{resource}: {problem}")]
    Invalid {
        /// Where (logical id, with the property path when known).
        resource: String,
        /// What is wrong.
        problem: String,
    },
    /// A `!Ref`/`!GetAtt` names a resource or parameter the template does not declare.
    #[error("unknown reference {0}")]
    UnknownReference(String),
    /// An intrinsic or attribute the bridge does not resolve.
    #[error("cannot resolve {0}")]
    Unsupported(String),
    /// A reference to an id the emulator assigns (a user pool's), not known yet.
    #[error("the id of {0} is assigned by the emulator: known once setup has created it")]
    Unassigned(String),
}

impl TemplateError {
    /// An [`TemplateError::Invalid`] for `resource`.
    pub fn invalid(resource: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            resource: resource.into(),
            problem: problem.into(),
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
    resources: BTreeMap<String, Value>,
}

/// The repository's `template.yaml`, compiled in: what the tests and `orderflow create-tables`
/// create their resources from, so no table, queue or rule is described anywhere else.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

impl Template {
    /// The repository's template ([`TEMPLATE_YAML`]).
    pub fn builtin() -> Result<Self, TemplateError> {
        Self::parse(TEMPLATE_YAML)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TemplateError::Unreadable(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    /// Parses template text.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value =
            serde_norway::from_str(text).map_err(|e| TemplateError::Unreadable(e.to_string()))?;
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| TemplateError::Unreadable("no Resources section".into()))?
            .iter()
            .filter_map(|(id, resource)| Some((id.as_str()?.to_owned(), resource.clone())))
            .collect();
        Ok(Self { root, resources })
    }

    /// Every resource, by logical id (sorted).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.resources.iter().map(|(id, r)| (id.as_str(), r))
    }

    /// The resources of one type (`AWS::SQS::Queue` …), by logical id.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
    }

    /// One resource by logical id.
    pub fn resource(&self, id: &str) -> Option<&Value> {
        self.resources.get(id)
    }

    /// The type of a resource.
    pub fn type_of(&self, id: &str) -> Option<&str> {
        self.resource(id)?.get("Type")?.as_str()
    }

    /// A resource's `Properties` (an empty mapping when it has none).
    pub fn properties(&self, id: &str) -> &Value {
        static EMPTY: Value = Value::Null;
        self.resource(id)
            .and_then(|r| r.get("Properties"))
            .unwrap_or(&EMPTY)
    }

    /// `Globals.Function.<key>`, if set.
    pub fn function_global(&self, key: &str) -> Option<&Value> {
        self.root.get("Globals")?.get("Function")?.get(key)
    }

    /// Parameter defaults, by name.
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        self.root
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, p)| {
                let default = match p.get("Default")? {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((name.as_str()?.to_owned(), default))
            })
            .collect()
    }
}

/// Where resources live: the values of the pseudo parameters and the emulator's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `Stage` and any other parameter values (template defaults fill the rest).
    pub parameters: BTreeMap<String, String>,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId` (moto's default account is `123456789012`).
    pub account: String,
    /// The emulator's endpoint, for queue URLs (`!Ref` of a queue).
    pub endpoint: String,
    /// Ids the emulator assigned when setup created their resources (a user pool's, an app
    /// client's), by logical id: what `!Ref` of such a resource resolves to.
    pub assigned: BTreeMap<String, String>,
}

impl Environment {
    /// The account moto serves when none is configured.
    pub const DEFAULT_ACCOUNT: &'static str = "123456789012";

    /// A local environment for `stage`.
    pub fn local(stage: &str, region: &str, endpoint: &str) -> Self {
        Self {
            parameters: BTreeMap::from([("Stage".to_owned(), stage.to_owned())]),
            region: region.to_owned(),
            account: Self::DEFAULT_ACCOUNT.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            assigned: BTreeMap::new(),
        }
    }
}

/// Whether the emulator assigns the id of a resource of this type (its `!Ref`), rather than the
/// template naming it.
pub fn assigned_by_emulator(kind: &str) -> bool {
    matches!(
        kind,
        "AWS::Cognito::UserPool" | "AWS::Cognito::UserPoolClient"
    )
}

/// Marks a hole in a string resolved by [`Resolver::deferred`] (YAML text cannot hold it raw).
const HOLE: char = '\u{0}';

/// One piece of a [`Deferred`] string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Assigned(String),
}

/// A string that needs ids only the emulator knows until setup has created their resources
/// (`!Sub "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"`): resolved text with
/// holes named by logical id, filled by [`Deferred::fill`] once the ids are known (the way CDK
/// tokens stand for values known at deploy time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pieces: Vec<Piece>,
}

impl Deferred {
    /// A string without holes.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            pieces: vec![Piece::Text(text.into())],
        }
    }

    /// Splits text resolved with [`HOLE`]-marked placeholders into its pieces.
    fn parse(resolved: &str) -> Self {
        let pieces = resolved
            .split(HOLE)
            .enumerate()
            .filter(|(index, piece)| index % 2 == 1 || !piece.is_empty())
            .map(|(index, piece)| match index % 2 {
                1 => Piece::Assigned(piece.to_owned()),
                _ => Piece::Text(piece.to_owned()),
            })
            .collect();
        Self { pieces }
    }

    /// The logical ids whose assigned ids the string needs.
    pub fn needs(&self) -> BTreeSet<&str> {
        self.pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Assigned(id) => Some(id.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// The string, each hole filled with the id `assigned` has for its logical id.
    pub fn fill(&self, assigned: &BTreeMap<String, String>) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Assigned(id) => out.push_str(
                    assigned
                        .get(id)
                        .ok_or_else(|| TemplateError::Unassigned(id.clone()))?,
                ),
            }
        }
        Ok(out)
    }
}

/// Resolves intrinsic functions against one template and environment.
#[derive(Debug, Clone)]
pub struct Resolver<'t> {
    template: &'t Template,
    env: Environment,
}

/// The explicit-name property of each resource type the bridge knows.
fn name_property(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "AWS::DynamoDB::Table" => "TableName",
        "AWS::SQS::Queue" => "QueueName",
        "AWS::SNS::Topic" => "TopicName",
        "AWS::Events::EventBus" | "AWS::Events::Rule" => "Name",
        "AWS::Serverless::Function" | "AWS::Lambda::Function" => "FunctionName",
        "AWS::CloudWatch::Alarm" => "AlarmName",
        "AWS::Cognito::UserPool" => "UserPoolName",
        "AWS::Cognito::UserPoolClient" => "ClientName",
        "AWS::Cognito::UserPoolGroup" => "GroupName",
        _ => return None,
    })
}

impl<'t> Resolver<'t> {
    /// A resolver for `template` in `env` (parameter defaults fill what `env` does not set).
    pub fn new(template: &'t Template, mut env: Environment) -> Self {
        for (name, default) in template.parameter_defaults() {
            env.parameters.entry(name).or_insert(default);
        }
        Self { template, env }
    }

    /// The template.
    pub fn template(&self) -> &'t Template {
        self.template
    }

    /// The environment.
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// A string value (a plain scalar or an intrinsic).
    pub fn string(&self, value: &Value) -> Result<String, TemplateError> {
        match self.json(value)? {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(TemplateError::Unsupported(format!(
                "{other} where a string was expected"
            ))),
        }
    }

    /// Any value as JSON, every intrinsic inside it resolved.
    pub fn json(&self, value: &Value) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str(&n.to_string())
                .map_err(|e| TemplateError::Unsupported(format!("number {n}: {e}")))?,
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Sequence(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| self.json(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(map) => match long_form(map) {
                Some((function, argument)) => {
                    serde_json::Value::String(self.intrinsic(function, argument)?)
                }
                None => serde_json::Value::Object(
                    map.iter()
                        .map(|(k, v)| Ok((key_string(k)?, self.json(v)?)))
                        .collect::<Result<_, TemplateError>>()?,
                ),
            },
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let function = tag.trim_start_matches('!');
                serde_json::Value::String(self.intrinsic(function, &tagged.value)?)
            }
        })
    }

    /// A string value that may need ids the emulator assigns (`!Ref UserPool`): those not in
    /// [`Environment::assigned`] yet stay holes, to [`Deferred::fill`] once setup has run.
    pub fn deferred(&self, value: &Value) -> Result<Deferred, TemplateError> {
        let mut env = self.env.clone();
        for (id, resource) in self.template.resources() {
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            if assigned_by_emulator(kind) && !env.assigned.contains_key(id) {
                env.assigned
                    .insert(id.to_owned(), format!("{HOLE}{id}{HOLE}"));
            }
        }
        let with_holes = Resolver {
            template: self.template,
            env,
        };
        Ok(Deferred::parse(&with_holes.string(value)?))
    }

    /// The id the emulator assigned to `id`, if setup has run.
    fn assigned(&self, id: &str) -> Result<String, TemplateError> {
        self.env
            .assigned
            .get(id)
            .cloned()
            .ok_or_else(|| TemplateError::Unassigned(id.to_owned()))
    }

    /// The logical id a `!Ref X` / `!GetAtt X.Attr` points at (and the attribute, if any), without
    /// resolving it: for the bridge's run-time lookups.
    pub fn target(value: &Value) -> Option<(String, Option<String>)> {
        let (function, argument) = match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                (tag.trim_start_matches('!').to_owned(), tagged.value.clone())
            }
            Value::Mapping(map) => {
                let (function, argument) = long_form(map)?;
                (function.to_owned(), argument.clone())
            }
            _ => return None,
        };
        match function.as_str() {
            "Ref" => Some((argument.as_str()?.to_owned(), None)),
            "GetAtt" => {
                let (id, attribute) = get_att_parts(&argument)?;
                Some((id, Some(attribute)))
            }
            _ => None,
        }
    }

    /// A resource's physical name (its explicit name property, resolved).
    pub fn name_of(&self, id: &str) -> Result<String, TemplateError> {
        let kind = self
            .template
            .type_of(id)
            .ok_or_else(|| TemplateError::UnknownReference(id.to_owned()))?;
        let property = name_property(kind)
            .ok_or_else(|| TemplateError::Unsupported(format!("the name of {id} ({kind})")))?;
        let value = self
            .template
            .properties(id)
            .get(property)
            .ok_or_else(|| TemplateError::invalid(id, format!("no explicit {property}")))?;
        self.string(value)
    }

    fn intrinsic(&self, function: &str, argument: &Value) -> Result<String, TemplateError> {
        match function {
            "Ref" => {
                let name = argument
                    .as_str()
                    .ok_or_else(|| TemplateError::Unsupported(format!("!Ref {argument:?}")))?;
                self.reference(name)
            }
            "GetAtt" => {
                let (id, attribute) = get_att_parts(argument)
                    .ok_or_else(|| TemplateError::Unsupported(format!("!GetAtt {argument:?}")))?;
                self.attribute(&id, &attribute)
            }
            "Sub" => self.substitute(argument),
            "Join" => {
                let parts = argument.as_sequence().filter(|p| p.len() == 2);
                let (delimiter, items) = parts
                    .and_then(|p| Some((p[0].as_str()?, p[1].as_sequence()?)))
                    .ok_or_else(|| TemplateError::Unsupported(format!("!Join {argument:?}")))?;
                let items = items
                    .iter()
                    .map(|item| self.string(item))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(items.join(delimiter))
            }
            other => Err(TemplateError::Unsupported(format!("!{other}"))),
        }
    }

    /// `!Ref name`: a parameter, a pseudo parameter or a resource.
    fn reference(&self, name: &str) -> Result<String, TemplateError> {
        if let Some(value) = self.pseudo(name) {
            return Ok(value);
        }
        if let Some(value) = self.env.parameters.get(name) {
            return Ok(value.clone());
        }
        let kind = self
            .template
            .type_of(name)
            .ok_or_else(|| TemplateError::UnknownReference(name.to_owned()))?;
        match kind {
            "AWS::SQS::Queue" => self.attribute(name, "QueueUrl"),
            "AWS::SNS::Topic" => self.attribute(name, "TopicArn"),
            "AWS::Serverless::HttpApi" | "AWS::Serverless::Api" => Ok("local".to_owned()),
            kind if assigned_by_emulator(kind) => self.assigned(name),
            _ => self.name_of(name),
        }
    }

    fn pseudo(&self, name: &str) -> Option<String> {
        let env = &self.env;
        Some(match name {
            "AWS::Region" => env.region.clone(),
            "AWS::AccountId" => env.account.clone(),
            "AWS::Partition" => "aws".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::StackName" => format!(
                "orderflow-{}",
                env.parameters.get("Stage").map_or("dev", String::as_str)
            ),
            "AWS::NoValue" => String::new(),
            _ => return None,
        })
    }

    /// `!GetAtt id.attribute`.
    fn attribute(&self, id: &str, attribute: &str) -> Result<String, TemplateError> {
        let kind = self
            .template
            .type_of(id)
            .ok_or_else(|| TemplateError::UnknownReference(id.to_owned()))?;
        let (region, account) = (&self.env.region, &self.env.account);
        let arn = |service: &str, resource: String| {
            format!("arn:aws:{service}:{region}:{account}:{resource}")
        };
        let name = || self.name_of(id);
        Ok(match (kind, attribute) {
            ("AWS::DynamoDB::Table", "Arn") => arn("dynamodb", format!("table/{}", name()?)),
            ("AWS::SQS::Queue", "Arn") => arn("sqs", name()?),
            ("AWS::SQS::Queue", "QueueName") => name()?,
            ("AWS::SQS::Queue", "QueueUrl") => {
                format!("{}/{account}/{}", self.env.endpoint, name()?)
            }
            ("AWS::SNS::Topic", "TopicArn") => arn("sns", name()?),
            ("AWS::SNS::Topic", "TopicName") => name()?,
            ("AWS::Events::EventBus", "Arn") => arn("events", format!("event-bus/{}", name()?)),
            ("AWS::Events::EventBus", "Name") => name()?,
            ("AWS::Events::Rule", "Arn") => {
                let bus = match self.template.properties(id).get("EventBusName") {
                    Some(bus) => format!("{}/", self.string(bus)?),
                    None => String::new(),
                };
                arn("events", format!("rule/{bus}{}", name()?))
            }
            ("AWS::Serverless::Function" | "AWS::Lambda::Function", "Arn") => {
                arn("lambda", format!("function:{}", name()?))
            }
            ("AWS::Cognito::UserPool", "Arn") => {
                arn("cognito-idp", format!("userpool/{}", self.assigned(id)?))
            }
            ("AWS::Cognito::UserPool", "ProviderName") => {
                format!("cognito-idp.{region}.amazonaws.com/{}", self.assigned(id)?)
            }
            ("AWS::Cognito::UserPool", "ProviderURL") => format!(
                "https://cognito-idp.{region}.amazonaws.com/{}",
                self.assigned(id)?
            ),
            _ => {
                return Err(TemplateError::Unsupported(format!(
                    "!GetAtt {id}.{attribute} ({kind})"
                )));
            }
        })
    }

    /// `!Sub "text ${Name} ${Res.Attr}"` or `!Sub [text, {Name: value}]`.
    fn substitute(&self, argument: &Value) -> Result<String, TemplateError> {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), BTreeMap::new()),
            Value::Sequence(parts) if parts.len() == 2 => {
                let text = parts[0]
                    .as_str()
                    .ok_or_else(|| TemplateError::Unsupported(format!("!Sub {argument:?}")))?;
                let variables = parts[1]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| Ok((key_string(k)?, self.string(v)?)))
                    .collect::<Result<BTreeMap<_, _>, TemplateError>>()?;
                (text, variables)
            }
            _ => return Err(TemplateError::Unsupported(format!("!Sub {argument:?}"))),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unsupported(format!("!Sub {text:?}")))?;
            let variable = &after[..end];
            if let Some(literal) = variable.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(variable) {
                out.push_str(value);
            } else if let Some((id, attribute)) = variable.split_once('.')
                && self.pseudo(variable).is_none()
            {
                out.push_str(&self.attribute(id, attribute)?);
            } else {
                out.push_str(&self.reference(variable)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// `{"Ref": x}` / `{"Fn::Sub": x}` …: the function name (without `Fn::`) and its argument.
fn long_form(map: &Mapping) -> Option<(&str, &Value)> {
    if map.len() != 1 {
        return None;
    }
    let (key, value) = map.iter().next()?;
    let key = key.as_str()?;
    let function = if key == "Ref" {
        "Ref"
    } else {
        key.strip_prefix("Fn::")?
    };
    Some((function, value))
}

/// `X.Attr` or `[X, Attr]`.
fn get_att_parts(argument: &Value) -> Option<(String, String)> {
    match argument {
        Value::String(s) => {
            let (id, attribute) = s.split_once('.')?;
            Some((id.to_owned(), attribute.to_owned()))
        }
        Value::Sequence(parts) if parts.len() == 2 => {
            Some((parts[0].as_str()?.to_owned(), parts[1].as_str()?.to_owned()))
        }
        _ => None,
    }
}

fn key_string(key: &Value) -> Result<String, TemplateError> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(TemplateError::Unsupported(format!("mapping key {other:?}"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The workspace's `template.yaml`.
    pub(crate) fn real_template() -> Template {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        Template::load(&path).unwrap()
    }

    pub(crate) fn local_env() -> Environment {
        Environment::local("local", "us-east-1", "http://127.0.0.1:5000")
    }

    const SMALL: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "app-${Stage}-t"
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join ["-", [app, !Ref Stage, q]]
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: {"Fn::Sub": "app-${Stage}-bus"}
  Rule:
    Type: AWS::Events::Rule
    Properties:
      Name: r
      EventBusName: !Ref Bus
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub ["${Prefix}-topic", {Prefix: !Ref Stage}]
"#;

    #[test]
    fn refs_subs_and_get_atts_resolve_to_the_emulators_names() {
        let template = Template::parse(SMALL).unwrap();
        let resolver = Resolver::new(&template, local_env());
        let yaml = |text: &str| serde_norway::from_str::<Value>(text).unwrap();
        let resolve = |text: &str| resolver.string(&yaml(text)).unwrap();
        assert_eq!(resolve("!Ref Table"), "app-local-t");
        assert_eq!(
            resolve("!GetAtt Table.Arn"),
            "arn:aws:dynamodb:us-east-1:123456789012:table/app-local-t"
        );
        assert_eq!(
            resolve("!Ref Queue"),
            "http://127.0.0.1:5000/123456789012/app-local-q"
        );
        assert_eq!(
            resolve("!GetAtt [Queue, Arn]"),
            "arn:aws:sqs:us-east-1:123456789012:app-local-q"
        );
        assert_eq!(resolve("!Ref Bus"), "app-local-bus");
        assert_eq!(
            resolve("!GetAtt Rule.Arn"),
            "arn:aws:events:us-east-1:123456789012:rule/app-local-bus/r"
        );
        assert_eq!(
            resolve("!Ref Topic"),
            "arn:aws:sns:us-east-1:123456789012:local-topic"
        );
        assert_eq!(
            resolve(r#"!Sub "${Table.Arn}/index/x in ${AWS::Region} ${!Literal}""#),
            "arn:aws:dynamodb:us-east-1:123456789012:table/app-local-t/index/x in us-east-1 ${Literal}"
        );
        assert_eq!(resolve(r#"{"Ref": "Stage"}"#), "local");
    }

    #[test]
    fn what_only_the_emulator_knows_or_the_template_lacks_is_an_error() {
        let template = Template::parse(SMALL).unwrap();
        let resolver = Resolver::new(&template, local_env());
        let yaml = |text: &str| serde_norway::from_str::<Value>(text).unwrap();
        assert!(matches!(
            resolver.string(&yaml("!GetAtt Table.StreamArn")),
            Err(TemplateError::Unsupported(_))
        ));
        assert_eq!(
            resolver.string(&yaml("!Ref Nope")),
            Err(TemplateError::UnknownReference("Nope".into()))
        );
        assert!(resolver.string(&yaml("!If [a, b, c]")).is_err());
    }

    const IDENTITY: &str = r#"
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties: {UserPoolName: !Sub "app-${AWS::Region}-users"}
  Client:
    Type: AWS::Cognito::UserPoolClient
    Properties: {ClientName: api, UserPoolId: !Ref Pool}
  Group:
    Type: AWS::Cognito::UserPoolGroup
    Properties: {GroupName: admins, UserPoolId: !Ref Pool}
"#;

    #[test]
    fn ids_the_emulator_assigns_resolve_once_known_and_stay_holes_until_then() {
        let template = Template::parse(IDENTITY).unwrap();
        let yaml = |text: &str| serde_norway::from_str::<Value>(text).unwrap();
        let issuer = yaml(r#"!Sub "https://cognito-idp.${AWS::Region}.amazonaws.com/${Pool}""#);
        let before = Resolver::new(&template, local_env());
        assert_eq!(
            before.string(&issuer),
            Err(TemplateError::Unassigned("Pool".into()))
        );
        assert_eq!(before.name_of("Pool").unwrap(), "app-us-east-1-users");
        assert_eq!(before.string(&yaml("!Ref Group")).unwrap(), "admins");
        let deferred = before.deferred(&issuer).unwrap();
        assert_eq!(deferred.needs(), BTreeSet::from(["Pool"]));
        let ids = BTreeMap::from([("Pool".to_owned(), "us-east-1_abc".to_owned())]);
        assert_eq!(
            deferred.fill(&ids).unwrap(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert_eq!(
            deferred.fill(&BTreeMap::new()),
            Err(TemplateError::Unassigned("Pool".into()))
        );
        let audience = before.deferred(&yaml("!Ref Client")).unwrap();
        assert_eq!(audience.needs(), BTreeSet::from(["Client"]));
        let plain = before.deferred(&yaml("plain")).unwrap();
        assert!(plain.needs().is_empty());
        assert_eq!(plain, Deferred::text("plain"));

        let mut env = local_env();
        env.assigned = ids;
        let after = Resolver::new(&template, env);
        assert_eq!(
            after.string(&issuer).unwrap(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert_eq!(
            after.string(&yaml("!GetAtt Pool.Arn")).unwrap(),
            "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc"
        );
        assert_eq!(
            after.string(&yaml("!GetAtt Pool.ProviderName")).unwrap(),
            "cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"
        );
        assert!(after.deferred(&issuer).unwrap().needs().is_empty());
    }

    #[test]
    fn targets_name_the_logical_id_and_attribute() {
        let yaml = |text: &str| serde_norway::from_str::<Value>(text).unwrap();
        assert_eq!(
            Resolver::target(&yaml("!GetAtt EventsTable.StreamArn")),
            Some(("EventsTable".into(), Some("StreamArn".into())))
        );
        assert_eq!(
            Resolver::target(&yaml("!Ref Fn")),
            Some(("Fn".into(), None))
        );
        assert_eq!(Resolver::target(&yaml("plain")), None);
    }

    #[test]
    fn the_real_template_parses_and_defaults_its_stage() {
        let template = real_template();
        assert_eq!(
            template
                .parameter_defaults()
                .get("Stage")
                .map(String::as_str),
            Some("dev")
        );
        assert!(template.of_type("AWS::Serverless::Function").count() >= 10);
        assert!(template.function_global("Timeout").is_some());
    }
}
