//! `promptreg run`: render a prompt as `render` does, send it to the model, stream the reply.

use clap::Args;
use serde_json::Value;

use super::model::{client, config, ModelArgs};
use super::output::print;
use super::render::{render, RenderArgs, Request};
use super::{Context, DataFormat, Failure};
use crate::render::chat::request_body;

/// Render a prompt and send it to a model.
///
/// The prompt is rendered exactly as `render` renders it (values from `--test`, `--vars`,
/// `--var`), mapped to a chat-completions request (`modelParameters` in snake case,
/// `responseFormat`/`jsonSchema` as structured output) and sent. The reply is streamed to
/// stdout as it arrives; `--format json` prints the whole response, usage included.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to render.
    #[command(flatten)]
    pub render: RenderArgs,
    /// Where the model is.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Runs `run`.
pub fn run(ctx: &Context, args: RunArgs) -> Result<u8, Failure> {
    // One registry for the model settings and the render: the repository is opened once.
    let registry = ctx.registry()?;
    let config = config(&args.model.settings(), &registry)?;
    let request = Request::from_args(args.render)?;
    let rendered = render(&registry, &request)?;
    let model = config.model.clone().or_else(|| {
        rendered
            .model
            .is_none()
            .then(|| config.fallback_model.clone())
            .flatten()
    });
    let mut body = request_body(&rendered, model.as_deref())?;
    let stream = request.format == DataFormat::Text;
    if let Value::Object(map) = &mut body {
        map.insert("stream".into(), Value::Bool(stream));
        if stream {
            map.insert(
                "stream_options".into(),
                serde_json::json!({ "include_usage": true }),
            );
        }
    }
    let client = client(config);
    let mut ended_with_newline = true;
    let mut failed_print = None;
    let mut on_delta = |piece: &str| {
        if stream && !piece.is_empty() && failed_print.is_none() {
            ended_with_newline = piece.ends_with('\n');
            if let Err(e) = print(piece) {
                failed_print = Some(e);
            }
        }
    };
    let completion = client.complete(&body, &mut on_delta)?;
    if let Some(failure) = failed_print {
        return Err(failure);
    }
    if stream {
        if !ended_with_newline {
            print("\n")?;
        }
    } else {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&completion.response).unwrap_or_default()
        ))?;
    }
    Ok(0)
}
