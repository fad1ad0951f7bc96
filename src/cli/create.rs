//! `ollmlx create MODEL [-f Modelfile] [-q LEVEL]`, as `ollama create` (`cmd.CreateHandler`):
//!
//! 1. parse the Modelfile (`./Modelfile` by default; with none there, `FROM .`);
//! 2. turn it into a create request ([`Modelfile::plan`]); local `FROM`/`ADAPTER` files are
//!    hashed (`gathering model components`), then each is uploaded as a blob unless the daemon
//!    already holds it (`HEAD`, then `POST /api/blobs/sha256:<hex>`; `copying file sha256:... 100%`);
//! 3. send `POST /api/create` and show its progress lines, ending with `success`.
//!
//! All progress goes to stderr, as Ollama's does, through [`super::progress`]: on a terminal
//! each status is a spinner line redrawn in place while it changes (percentages); elsewhere
//! every line is written once, with its final text, so a log reads like the terminal's end state. An `error` line ends the command with
//! `Error: <message>` and exit status 1.

use super::modelfile::{LocalFile, Modelfile};
use super::progress::Progress;
use super::Printer;
use crate::client::Client;
use crate::store::name::ModelName;
use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Name of the model to create.
    pub model: String,
    /// Name of the Modelfile [default: Modelfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Quantize model to this level (e.g. q4_K_M)
    #[arg(short = 'q', long = "quantize", value_name = "LEVEL")]
    pub quantize: Option<String>,
}

pub async fn run(args: CreateArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let mut progress = Progress::stderr(p);
    let result = create(&args, &cwd, client, &mut progress).await;
    progress.finish(result.is_err())?;
    result.map(|()| ExitCode::SUCCESS)
}

async fn create(
    args: &CreateArgs,
    cwd: &Path,
    client: &Client,
    progress: &mut Progress<'_>,
) -> anyhow::Result<()> {
    // Fail fast, before hashing gigabytes, as Ollama does.
    if ModelName::parse(&args.model).is_err() {
        bail!("invalid model name: {}", args.model);
    }

    let plan = match args.file.as_deref() {
        Some(file) => {
            let path = cwd.join(file);
            let bytes = match std::fs::read(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    bail!("specified Modelfile wasn't found")
                }
                other => other.with_context(|| path.display().to_string())?,
            };
            let dir = path.parent().unwrap_or(cwd);
            Modelfile::parse(&bytes)?.plan(dir)?
        }
        None => {
            let path = cwd.join("Modelfile");
            match std::fs::read(&path) {
                Ok(bytes) => Modelfile::parse(&bytes)?.plan(cwd)?,
                // Without a Modelfile, the model is the current folder (Ollama: `FROM .`).
                Err(e) if e.kind() == io::ErrorKind::NotFound => Modelfile::parse_str("FROM .\n")?
                    .plan(cwd)
                    .context("no Modelfile here, so FROM . was assumed")?,
                Err(e) => return Err(e).with_context(|| path.display().to_string()),
            }
        }
    };
    for warning in &plan.warnings {
        progress.note(warning)?;
    }

    let mut req = plan.request;
    req.model.clone_from(&args.model);
    if let Some(q) = args.quantize.as_deref().filter(|q| !q.is_empty()) {
        req.quantize = Some(q.to_owned());
    }

    progress.status("gathering", "gathering model components")?;
    let files = digests(&plan.files, progress).await?;
    let adapters = digests(&plan.adapters, progress).await?;
    for (file, digest) in files.iter().chain(&adapters) {
        ensure_blob(client, file, digest, progress).await?;
    }
    let names = |list: &[(LocalFile, String)]| -> Option<BTreeMap<String, String>> {
        let map: BTreeMap<_, _> = list
            .iter()
            .map(|(f, d)| (f.name.clone(), d.clone()))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    req.files = names(&files);
    req.adapters = names(&adapters);

    // Progress lines with a digest are bars (Ollama keeps one per digest, labelled by the status
    // it first came with); the others are spinners, one per change of status.
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut stream = std::pin::pin!(client.create(&req));
    while let Some(line) = stream.next().await {
        let line = line?;
        if line.digest.is_empty() {
            progress.status(&line.status, &line.status)?;
        } else {
            let label = labels.entry(line.digest.clone()).or_insert_with(|| {
                if line.status.is_empty() {
                    let hex = line.digest.strip_prefix("sha256:").unwrap_or(&line.digest);
                    format!("pulling {}...", hex.get(..12).unwrap_or(hex))
                } else {
                    line.status.clone()
                }
            });
            let text = format!("{label} {}%", percent(line.completed, line.total));
            progress.status(&format!("bar {}", line.digest), &text)?;
        }
    }
    Ok(())
}

/// Hashes each local file (SHA-256, streamed from disk off the async thread), under the
/// `gathering model components` status.
async fn digests(
    files: &[LocalFile],
    progress: &mut Progress<'_>,
) -> anyhow::Result<Vec<(LocalFile, String)>> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let total = std::fs::metadata(&file.path)
            .with_context(|| file.path.display().to_string())?
            .len();
        let read = Arc::new(AtomicU64::new(0));
        let hashing = tokio::task::spawn_blocking({
            let path = file.path.clone();
            let read = read.clone();
            move || sha256_file(&path, &read)
        });
        let name = &file.name;
        let digest = with_percent(hashing, &read, total, progress, |p, pct| {
            p.detail(&format!(
                "gathering model components (hashing {name} {pct}%)"
            ));
            Ok(())
        })
        .await?
        .context("hashing was interrupted")?
        .with_context(|| file.path.display().to_string())?;
        out.push((file.clone(), digest));
    }
    Ok(out)
}

/// `sha256:<hex>` of a file, counting the bytes read into `read`.
pub fn sha256_file(path: &Path, read: &AtomicU64) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        read.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Uploads a file as a blob unless the daemon holds it already (Ollama's `createBlob`).
async fn ensure_blob(
    client: &Client,
    file: &LocalFile,
    digest: &str,
    progress: &mut Progress<'_>,
) -> anyhow::Result<()> {
    let key = format!("copy {digest}");
    progress.status(&key, &format!("copying file {digest} 0%"))?;
    if !client.blob_exists(digest).await? {
        let total = std::fs::metadata(&file.path)
            .with_context(|| file.path.display().to_string())?
            .len();
        let sent = Arc::new(AtomicU64::new(0));
        let upload = client.upload_blob_counted(digest, &file.path, sent.clone());
        with_percent(upload, &sent, total, progress, |p, pct| {
            p.status(&key, &format!("copying file {digest} {pct}%"))
        })
        .await??;
    }
    progress.status(&key, &format!("copying file {digest} 100%"))?;
    Ok(())
}

/// Runs `work`, showing `counter` against `total` as a percentage every 100 ms meanwhile.
async fn with_percent<'a, T>(
    work: impl Future<Output = T>,
    counter: &AtomicU64,
    total: u64,
    progress: &mut Progress<'a>,
    mut show: impl FnMut(&mut Progress<'a>, u64) -> io::Result<()>,
) -> io::Result<T> {
    let mut work = std::pin::pin!(work);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            _ = ticker.tick() => show(progress, percent(counter.load(Ordering::Relaxed), total))?,
        }
    }
}

/// `done` of `total` in whole percent (Ollama's `int(100*n/size)`); an empty total is done.
fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        return 100;
    }
    (u128::from(done) * 100 / u128::from(total)).min(100) as u64
}

/// A fake daemon for the create, copy and blob endpoints: blobs live in memory and are checked
/// against their digest; `/api/create` answers by model name (`fails`: an error line after a
/// status; `reject`: 400 before streaming; `short`: no `success`; anything else succeeds, after
/// checking every referenced blob exists). Model `m` exists for `/api/copy`.
#[cfg(test)]
pub(crate) mod fake {
    use crate::api::{CopyRequest, CreateRequest};
    use crate::client::Client;
    use axum::body::Bytes;
    use axum::extract::{DefaultBodyLimit, Path, State};
    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, head, post};
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct Inner {
        pub blobs: BTreeMap<String, Vec<u8>>,
        pub log: Vec<String>,
        pub creates: Vec<CreateRequest>,
    }

    pub type Shared = Arc<Mutex<Inner>>;

    pub async fn daemon() -> (Client, Shared) {
        let state = Shared::default();
        let app = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route("/api/blobs/{digest}", head(head_blob).post(post_blob))
            .route("/api/create", post(create))
            .route("/api/copy", post(copy))
            .layer(DefaultBodyLimit::disable())
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Client::new(format!("http://{addr}")), state)
    }

    fn error(status: StatusCode, message: &str) -> Response {
        (status, Json(json!({ "error": message }))).into_response()
    }

    async fn head_blob(State(s): State<Shared>, Path(digest): Path<String>) -> StatusCode {
        let mut s = s.lock().unwrap();
        s.log.push(format!("head {digest}"));
        if s.blobs.contains_key(&digest) {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        }
    }

    async fn post_blob(
        State(s): State<Shared>,
        Path(digest): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let mut s = s.lock().unwrap();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        s.log.push(format!(
            "upload {digest} {} content-length={length}",
            body.len()
        ));
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if got != digest {
            let msg = format!("digest mismatch, expected \"{digest}\", got \"{got}\"");
            return error(StatusCode::BAD_REQUEST, &msg);
        }
        if s.blobs.contains_key(&digest) {
            return StatusCode::OK.into_response();
        }
        s.blobs.insert(digest, body.to_vec());
        StatusCode::CREATED.into_response()
    }

    fn ndjson(lines: &[Value]) -> Response {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
    }

    async fn create(State(s): State<Shared>, Json(req): Json<CreateRequest>) -> Response {
        let mut s = s.lock().unwrap();
        s.log.push(format!("create {}", req.model));
        s.creates.push(req.clone());
        let status = |t: &str| json!({ "status": t });
        match req.model.as_str() {
            "reject" => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "neither 'from' or 'files' was specified",
                )
            }
            "fails" => return ndjson(&[status("parsing GGUF"), json!({"error": "boom"})]),
            "short" => return ndjson(&[status("writing manifest")]),
            _ => {}
        }
        let referenced = req
            .files
            .iter()
            .chain(&req.adapters)
            .flat_map(|m| m.values());
        for digest in referenced {
            if !s.blobs.contains_key(digest) {
                return error(StatusCode::BAD_REQUEST, &format!("blob {digest} not found"));
            }
        }
        let mut lines = vec![status("parsing GGUF")];
        if let Some(q) = &req.quantize {
            let bar = |done: u64| {
                json!({"status": format!("quantizing F16 model to {}", q.to_uppercase()),
                       "digest": "sha256:0000000000000000000", "total": 200, "completed": done})
            };
            lines.extend([bar(0), bar(100), bar(200)]);
        }
        lines.extend([
            status("using existing layer sha256:1111"),
            status("writing manifest"),
            status("success"),
        ]);
        ndjson(&lines)
    }

    async fn copy(State(s): State<Shared>, Json(req): Json<CopyRequest>) -> Response {
        let mut s = s.lock().unwrap();
        s.log
            .push(format!("copy {} {}", req.source, req.destination));
        if req.source != "m" {
            return error(
                StatusCode::NOT_FOUND,
                &format!("model '{}' not found", req.source),
            );
        }
        StatusCode::OK.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{dispatch, Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn parse(args: &[&str]) -> Command {
        let cli = Cli::try_parse_from(std::iter::once("ollmlx").chain(args.iter().copied()));
        cli.unwrap().command.unwrap()
    }

    /// What a terminal shows once done: each line's text after its last in-place redraw.
    fn screen(s: &str) -> String {
        s.split('\n')
            .map(|l| l.rsplit("\r\x1b[K").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    /// 3 MiB that are not all the same, so the upload spans several body chunks.
    fn model_bytes() -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend((0..3u32 * 1024 * 1024 - 4).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        b
    }

    fn log(state: &fake::Shared) -> Vec<String> {
        std::mem::take(&mut state.lock().unwrap().log)
    }

    #[tokio::test]
    async fn create_uploads_a_local_gguf_once_and_streams_progress() {
        let (client, state) = fake::daemon().await;
        let dir = tempfile::tempdir().unwrap();
        let bytes = model_bytes();
        let digest = sha256_hex(&bytes);
        std::fs::write(dir.path().join("model.gguf"), &bytes).unwrap();
        let modelfile = dir.path().join("Modelfile");
        std::fs::write(
            &modelfile,
            "# a test model\nFROM ./model.gguf\nPARAMETER temperature 0.7\nPARAMETER stop <|im_end|>\n\
             PARAMETER stop \"<|eot|>\"\nSYSTEM \"\"\"You are\nhelpful.\"\"\"\nLICENSE MIT\nMESSAGE user hi\n",
        )
        .unwrap();
        let mf = modelfile.to_str().unwrap();

        let (p, out) = Printer::capture();
        let code = dispatch(
            parse(&["create", "new", "-f", mf, "-q", "q4_K_M"]),
            &client,
            &p,
        )
        .await
        .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(out.out(), "");
        assert_eq!(
            screen(&out.err()),
            format!(
                "gathering model components\ncopying file {digest} 100%\nparsing GGUF\n\
                 quantizing F16 model to Q4_K_M 100%\nusing existing layer sha256:1111\n\
                 writing manifest\nsuccess\n"
            )
        );
        let len = bytes.len();
        assert_eq!(
            log(&state),
            [
                format!("head {digest}"),
                format!("upload {digest} {len} content-length={len}"),
                "create new".into(),
            ]
        );
        {
            let s = state.lock().unwrap();
            // The bytes that arrived are the file's, and hash to the digest sent.
            assert_eq!(s.blobs[&digest], bytes);
            assert_eq!(sha256_hex(&s.blobs[&digest]), digest);
            assert_eq!(
                serde_json::to_value(&s.creates[0]).unwrap(),
                json!({
                    "model": "new",
                    "files": {"model.gguf": digest},
                    "system": "You are\nhelpful.",
                    "license": ["MIT"],
                    "parameters": {"temperature": 0.7, "stop": ["<|im_end|>", "<|eot|>"]},
                    "messages": [{"role": "user", "content": "hi"}],
                    "quantize": "q4_K_M",
                })
            );
        }

        // Again: the daemon has the blob, so it is not sent twice.
        let (p, out) = Printer::capture();
        dispatch(parse(&["create", "new", "-f", mf]), &client, &p)
            .await
            .unwrap();
        assert_eq!(log(&state), [format!("head {digest}"), "create new".into()]);
        assert!(screen(&out.err()).contains(&format!("\ncopying file {digest} 100%\n")));
    }

    #[tokio::test]
    async fn create_from_a_model_name_uploads_nothing_and_adapters_are_uploaded() {
        let (client, state) = fake::daemon().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Modelfile"), "FROM m\nSYSTEM be brief\n").unwrap();
        let (result, out) = run_in(args("child", None), dir.path(), &client).await;
        result.unwrap();
        assert_eq!(log(&state), ["create child"]);
        assert_eq!(
            serde_json::to_value(&state.lock().unwrap().creates[0]).unwrap(),
            json!({"model": "child", "from": "m", "system": "be brief"})
        );
        assert_eq!(
            out.err(),
            "gathering model components\nparsing GGUF\nusing existing layer sha256:1111\n\
             writing manifest\nsuccess\n"
        );

        std::fs::write(dir.path().join("lora.gguf"), b"lora").unwrap();
        std::fs::write(
            dir.path().join("Modelfile"),
            "FROM m\nADAPTER lora.gguf\nPARAMETER mirostat 1\n",
        )
        .unwrap();
        let (result, out) = run_in(args("tuned", None), dir.path(), &client).await;
        result.unwrap();
        let digest = sha256_hex(b"lora");
        assert_eq!(
            log(&state),
            [
                format!("head {digest}"),
                format!("upload {digest} 4 content-length=4"),
                "create tuned".into()
            ]
        );
        let req = serde_json::to_value(&state.lock().unwrap().creates[1]).unwrap();
        assert_eq!(req["adapters"], json!({"lora.gguf": digest}));
        assert!(req.get("files").is_none());
        assert!(out.err().starts_with(
            "warning: parameter mirostat is deprecated\ngathering model components\n"
        ));
    }

    /// [`run`] in the folder `cwd`, printing plainly into memory.
    async fn run_in(
        args: CreateArgs,
        cwd: &Path,
        client: &Client,
    ) -> (anyhow::Result<()>, crate::cli::printer::Captured) {
        let (p, out) = Printer::capture();
        let mut progress = Progress::new(&p, None);
        let result = create(&args, cwd, client, &mut progress).await;
        progress.finish(result.is_err()).unwrap();
        (result, out)
    }

    fn args(model: &str, file: Option<&Path>) -> CreateArgs {
        CreateArgs {
            model: model.into(),
            file: file.map(Path::to_owned),
            quantize: None,
        }
    }

    #[tokio::test]
    async fn without_a_modelfile_the_folders_gguf_is_the_model() {
        let (client, state) = fake::daemon().await;
        let dir = tempfile::tempdir().unwrap();
        let err = run_in(args("x", None), dir.path(), &client)
            .await
            .0
            .unwrap_err();
        assert!(
            format!("{err:#}")
                .starts_with("no Modelfile here, so FROM . was assumed: no .gguf file found in "),
            "{err:#}"
        );

        std::fs::write(dir.path().join("weights.gguf"), b"GGUF1").unwrap();
        run_in(args("x", None), dir.path(), &client)
            .await
            .0
            .unwrap();
        let req = serde_json::to_value(&state.lock().unwrap().creates[0]).unwrap();
        assert_eq!(req["files"], json!({"weights.gguf": sha256_hex(b"GGUF1")}));

        // An explicit -f that does not exist is an error, as in Ollama.
        let (result, out) = run_in(args("x", Some(Path::new("Nope"))), dir.path(), &client).await;
        let err = result.unwrap_err();
        assert_eq!(out.err(), "");
        assert_eq!(err.to_string(), "specified Modelfile wasn't found");
    }

    #[tokio::test]
    async fn failures_end_with_the_daemons_message() {
        let (client, state) = fake::daemon().await;
        let dir = tempfile::tempdir().unwrap();
        let mf = dir.path().join("Modelfile");
        std::fs::write(&mf, "FROM m\n").unwrap();
        let mf = mf.to_str().unwrap();
        let run = |model: &'static str| {
            let client = client.clone();
            let cmd = parse(&["create", model, "-f", mf]);
            async move {
                let (p, out) = Printer::capture();
                let err = dispatch(cmd, &client, &p).await.unwrap_err();
                (format!("{err:#}"), out.err())
            }
        };

        let (err, stderr) = run("fails").await;
        assert_eq!(err, "boom");
        assert_eq!(stderr, "gathering model components\nparsing GGUF\n");
        let (err, _) = run("reject").await;
        assert_eq!(err, "neither 'from' or 'files' was specified");
        let (err, _) = run("short").await;
        assert_eq!(
            err,
            "the server closed the stream before it reported success"
        );

        // Problems found locally send nothing.
        log(&state);
        let (err, stderr) = run("Bad Name!").await;
        assert_eq!(err, "invalid model name: Bad Name!");
        assert_eq!(stderr, "");
        std::fs::write(dir.path().join("Modelfile"), "FROM m\nPARAMETER bogus 1\n").unwrap();
        let (err, _) = run("ok").await;
        assert_eq!(err, "unknown parameter 'bogus'");
        std::fs::write(
            dir.path().join("Modelfile"),
            "FROM m\nSYSTEM ok\nMESSAGE tool x\n",
        )
        .unwrap();
        let (err, _) = run("ok").await;
        assert_eq!(
            err,
            "(line 3): message role must be one of \"system\", \"user\", or \"assistant\""
        );
        assert!(log(&state).is_empty());
    }

    #[tokio::test]
    async fn blob_client_calls() {
        let (client, state) = fake::daemon().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let digest = sha256_hex(b"hello");

        assert!(!client.blob_exists(&digest).await.unwrap());
        client.upload_blob(&digest, &path).await.unwrap();
        assert!(client.blob_exists(&digest).await.unwrap());
        // Uploading again is fine (200).
        client.upload_blob(&digest, &path).await.unwrap();

        let wrong = sha256_hex(b"other");
        let err = client.upload_blob(&wrong, &path).await.unwrap_err();
        assert_eq!(err.status(), Some(reqwest::StatusCode::BAD_REQUEST));
        assert_eq!(
            err.to_string(),
            format!("digest mismatch, expected \"{wrong}\", got \"{digest}\"")
        );
        let err = client
            .upload_blob(&digest, &dir.path().join("missing"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, crate::client::ClientError::File { .. }),
            "{err:?}"
        );
        assert_eq!(state.lock().unwrap().blobs[&digest], b"hello");
    }

    #[test]
    fn live_progress_ends_like_the_plain_one() {
        let script = |progress: &mut Progress<'_>| {
            progress.status("g", "gathering model components").unwrap();
            progress.detail("gathering model components (hashing a 50%)");
            progress.status("c", "copying file sha256:ab 0%").unwrap();
            progress.status("c", "copying file sha256:ab 42%").unwrap();
            progress.status("c", "copying file sha256:ab 100%").unwrap();
            progress.status("parsing GGUF", "parsing GGUF").unwrap();
            progress.status("success", "success").unwrap();
            progress.finish(false).unwrap();
        };
        let (p, plain) = Printer::capture();
        script(&mut Progress::new(&p, None));
        let term = indicatif::InMemoryTerm::new(20, 80);
        let target = indicatif::ProgressDrawTarget::term_like(Box::new(term.clone()));
        let (p, live) = Printer::capture();
        script(&mut Progress::new(&p, Some(target)));
        let want =
            "gathering model components\ncopying file sha256:ab 100%\nparsing GGUF\nsuccess\n";
        assert_eq!(plain.err(), want);
        assert_eq!(live.err(), "");
        let screen: String = term
            .contents()
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        assert_eq!(screen, want);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
    }
}
