//! The S3 backend, through the `object_store` crate (SigV4, retries with backoff, parallel
//! multipart uploads, conditional PUTs). Synchronous on the outside: each backend owns a
//! small Tokio runtime and blocks on it, so callers on plain threads (builds, rayon
//! workers) never need one.
//!
//! Configuration comes from the usual variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//! `AWS_PROFILE` (static keys, `region` and `endpoint_url` from `~/.aws/credentials` and
//! `~/.aws/config`, or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`), and
//! `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for an S3-compatible server: with an
//! endpoint, requests use path-style addressing, and plain `http://` is allowed.
//! Web-identity and container credentials are passed through; the EC2 instance metadata
//! service is only asked when `WASMBUILD_S3_INSTANCE_CREDENTIALS=1`.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig, UpdateVersion, WriteMultipart,
};

use super::atomic::NewFile;
use super::backend::{ObjectBackend, ObjectInfo, Payload, PutBatch, prefix_dir};
use super::progress::Bar;
use super::{StoreError, io_err};

/// Objects up to this size go up in one PUT; larger ones in a multipart upload.
const SINGLE_PUT_LIMIT: u64 = 16 << 20;
/// Part size of multipart uploads.
const PART_SIZE: usize = 16 << 20;
/// Parts of one upload in flight at once.
const PART_CONCURRENCY: usize = 4;
/// Requests in flight at once for many small objects (default; `$WASMBUILD_S3_CONCURRENCY`).
const DEFAULT_CONCURRENCY: usize = 128;

fn concurrency() -> usize {
    static VALUE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *VALUE.get_or_init(|| {
        env("WASMBUILD_S3_CONCURRENCY")
            .and_then(|v| v.trim().parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_CONCURRENCY)
    })
}

/// S3 connection settings. [`S3Config::from_env`] reads the usual `AWS_*` variables.
#[derive(Clone, Default)]
pub struct S3Config {
    /// `AWS_ENDPOINT_URL`: an S3-compatible server (path-style requests; http allowed).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `AWS_PROFILE`: a profile of the shared config files, for what the above leave unset.
    pub profile: Option<String>,
    /// Retries of a failed request (default 5, or `$WASMBUILD_S3_RETRIES`).
    pub max_retries: Option<usize>,
    /// Other `aws_*` settings passed to the client as they are (web identity, containers).
    pub extra: Vec<(String, String)>,
    /// Ask the EC2 instance metadata service for credentials when nothing else gives any.
    pub instance_credentials: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .field("profile", &self.profile)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl S3Config {
    /// Settings from the `AWS_*` variables (see the module documentation).
    pub fn from_env() -> Self {
        let extra = [
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_ROLE_SESSION_NAME",
            "AWS_ENDPOINT_URL_STS",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ]
        .iter()
        .filter_map(|name| Some((name.to_ascii_lowercase(), env(name)?)))
        .collect();
        S3Config {
            endpoint: env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")),
            region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: env("AWS_ACCESS_KEY_ID"),
            secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
            session_token: env("AWS_SESSION_TOKEN"),
            profile: env("AWS_PROFILE"),
            max_retries: env("WASMBUILD_S3_RETRIES").and_then(|v| v.trim().parse().ok()),
            extra,
            instance_credentials: env("WASMBUILD_S3_INSTANCE_CREDENTIALS").as_deref() == Some("1"),
        }
    }

    /// Fills what is unset from the shared config files' profile (`AWS_PROFILE`, else
    /// `default` when no keys are set).
    fn apply_profile(&mut self) -> Result<(), String> {
        let have_keys = self.access_key_id.is_some() && self.secret_access_key.is_some();
        let name = match (&self.profile, have_keys) {
            (Some(name), _) => name.clone(),
            (None, false) => "default".to_owned(),
            (None, true) => {
                if self.region.is_some() && self.endpoint.is_some() {
                    return Ok(());
                }
                "default".to_owned()
            }
        };
        let home = dirs::home_dir().unwrap_or_default();
        let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials"));
        let config_file = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config"));
        let credentials = read_ini(&credentials_file);
        let config = read_ini(&config_file);
        let from_credentials = credentials.get(&name);
        let config_section = if name == "default" {
            config.get("default")
        } else {
            config.get(&format!("profile {name}"))
        };
        if from_credentials.is_none() && config_section.is_none() {
            if self.profile.is_some() && !have_keys {
                return Err(format!(
                    "AWS_PROFILE={name}: no such profile in {} or {}",
                    credentials_file.display(),
                    config_file.display()
                ));
            }
            return Ok(());
        }
        let lookup = |key: &str| {
            from_credentials
                .and_then(|s| s.get(key))
                .or_else(|| config_section.and_then(|s| s.get(key)))
                .cloned()
        };
        if !have_keys {
            self.access_key_id = lookup("aws_access_key_id");
            self.secret_access_key = lookup("aws_secret_access_key");
            self.session_token = lookup("aws_session_token");
        }
        if self.region.is_none() {
            self.region = lookup("region");
        }
        if self.endpoint.is_none() {
            self.endpoint = lookup("endpoint_url");
        }
        Ok(())
    }
}

/// A minimal INI reader for the AWS shared config files: `[section]` and `key = value`.
fn read_ini(path: &Path) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            out.entry(name.clone()).or_default();
            section = Some(name);
        } else if let (Some(section), Some((key, value))) = (&section, line.split_once('=')) {
            out.get_mut(section)
                .expect("inserted with the header")
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    out
}

/// A store in an S3 bucket, under a prefix.
pub struct S3Backend {
    store: Arc<AmazonS3>,
    prefix: String,
    describe: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Drop for S3Backend {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl S3Backend {
    /// Connects (lazily: no request is made here) to `bucket` under `prefix`.
    pub fn new(bucket: &str, prefix: &str, config: &S3Config) -> Result<Self, StoreError> {
        let mut config = config.clone();
        let location = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        let bad = |message: String| StoreError::BadSpec {
            spec: location.clone(),
            message,
        };
        config.apply_profile().map_err(bad)?;
        let describe = match &config.endpoint {
            Some(endpoint) => format!("{location} (endpoint {endpoint})"),
            None => location.clone(),
        };
        crate::tls::install_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"))
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: config.max_retries.unwrap_or(5),
                retry_timeout: Duration::from_secs(120),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_timeout(Duration::from_secs(600))
                    .with_allow_http(
                        config
                            .endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
                if let Some(token) = &config.session_token {
                    builder = builder.with_token(token);
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(bad(
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
                ));
            }
            (None, None) => {
                let delegated = config.extra.iter().any(|(k, _)| {
                    k == "aws_web_identity_token_file" || k.starts_with("aws_container_credentials")
                });
                if !delegated && !config.instance_credentials {
                    return Err(bad(
                        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                         (and AWS_SESSION_TOKEN), or AWS_PROFILE, or \
                         WASMBUILD_S3_INSTANCE_CREDENTIALS=1 on EC2"
                            .into(),
                    ));
                }
            }
        }
        for (key, value) in &config.extra {
            if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let store = builder
            .build()
            .map_err(|e| bad(format!("cannot configure S3: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wasmbuild-s3")
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the S3 client: {e}")))?;
        Ok(S3Backend {
            store: Arc::new(store),
            prefix: prefix.to_owned(),
            describe,
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("present until drop")
    }

    /// Runs `future` to completion from synchronous code (also from inside another Tokio
    /// runtime, through a scoped thread).
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| self.runtime().block_on(future))
                    .join()
                    .expect("S3 request thread panicked")
            })
        } else {
            self.runtime().block_on(future)
        }
    }

    fn path(&self, key: &str) -> ObjectPath {
        path_of(&self.prefix, key)
    }

    fn key_of(&self, location: &ObjectPath) -> Option<String> {
        let full = location.as_ref();
        if self.prefix.is_empty() {
            Some(full.to_owned())
        } else {
            full.strip_prefix(&self.prefix)?
                .strip_prefix('/')
                .map(str::to_owned)
        }
    }

    fn error(&self, what: &str, e: object_store::Error) -> StoreError {
        map_error(&self.describe, what, e)
    }

    async fn get_one(&self, path: ObjectPath) -> Result<Option<Bytes>, StoreError> {
        let got = self.store.get(&path).await;
        self.body_of(&path, got).await
    }

    /// The body of a GET's answer; `None` for a missing object.
    async fn body_of(
        &self,
        path: &ObjectPath,
        got: object_store::Result<object_store::GetResult>,
    ) -> Result<Option<Bytes>, StoreError> {
        match got {
            Ok(result) => result
                .bytes()
                .await
                .map(Some)
                .map_err(|e| self.error(&format!("reading {path}"), e)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(&format!("reading {path}"), e)),
        }
    }

    async fn exists_one(&self, path: ObjectPath) -> Result<bool, StoreError> {
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(self.error(&format!("looking up {path}"), e)),
        }
    }

    async fn delete_one(&self, path: ObjectPath) -> Result<(), StoreError> {
        match self.store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error(&format!("deleting {path}"), e)),
        }
    }

    async fn download_one(
        &self,
        path: ObjectPath,
        dest: &Path,
        tmp_dir: &Path,
        bar: &Bar,
    ) -> Result<(), StoreError> {
        // Written beside its destination, visible only once whole.
        let _ = tmp_dir;
        let mut new = match NewFile::create(dest, 0o644, false) {
            Ok(new) => new,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                NewFile::create(dest, 0o644, false).map_err(io_err(dest))?
            }
            Err(e) => return Err(io_err(dest)(e)),
        };
        if download(&self.store, &path, new.file(), false, &self.describe).await? {
            new.commit().map_err(io_err(dest))?;
        }
        bar.inc(1);
        Ok(())
    }
}

fn path_of(prefix: &str, key: &str) -> ObjectPath {
    if prefix.is_empty() {
        ObjectPath::from(key)
    } else {
        ObjectPath::from(format!("{prefix}/{key}"))
    }
}

/// Turns a client error into a clear store error: credentials refused, server unreachable,
/// or something else.
fn map_error(store: &str, what: &str, e: object_store::Error) -> StoreError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    let lower = text.to_ascii_lowercase();
    let auth = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || [
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "accessdenied",
        "403 forbidden",
        "status: 403",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    let message = format!("{what}: {text}");
    if auth {
        return StoreError::Auth {
            store: store.to_owned(),
            message: format!(
                "{message} (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, \
                 AWS_PROFILE)"
            ),
        };
    }
    let unreachable = [
        "connection refused",
        "error trying to connect",
        "tcp connect error",
        "dns error",
        "connection reset",
        "client error (connect)",
        "timed out",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    if unreachable {
        return StoreError::Unreachable {
            store: store.to_owned(),
            message: format!("{message} (is the server running? check AWS_ENDPOINT_URL)"),
        };
    }
    StoreError::Remote {
        store: store.to_owned(),
        message,
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

async fn put_payload(
    store: Arc<AmazonS3>,
    path: ObjectPath,
    payload: Payload,
    describe: &str,
    show_progress: bool,
) -> Result<(), StoreError> {
    let err = |what: &str, e| map_error(describe, &format!("{what} {path}"), e);
    match payload {
        Payload::Bytes(bytes) => {
            store
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(|e| err("uploading", e))?;
        }
        Payload::File(temp) => {
            let mut file = File::open(&temp).map_err(io_err(&temp))?;
            let size = file.metadata().map_err(io_err(&temp))?.len();
            if size <= SINGLE_PUT_LIMIT {
                let mut bytes = Vec::with_capacity(size as usize);
                file.read_to_end(&mut bytes).map_err(io_err(&temp))?;
                store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map_err(|e| err("uploading", e))?;
            } else {
                let bar = if show_progress {
                    Bar::bytes(size, "uploading")
                } else {
                    Bar::hidden()
                };
                let upload = store
                    .put_multipart(&path)
                    .await
                    .map_err(|e| err("starting the upload of", e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                let mut buf = vec![0u8; PART_SIZE];
                loop {
                    let n = match read_full(&mut file, &mut buf) {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = writer.abort().await;
                            return Err(io_err(&temp)(e));
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                        return Err(err("uploading a part of", e));
                    }
                    writer.write(&buf[..n]);
                    bar.inc(n as u64);
                }
                // The object appears only when the upload completes.
                writer
                    .finish()
                    .await
                    .map_err(|e| err("completing the upload of", e))?;
                bar.finish();
            }
        }
    }
    Ok(())
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

async fn download(
    store: &AmazonS3,
    path: &ObjectPath,
    out: &mut File,
    show_progress: bool,
    describe: &str,
) -> Result<bool, StoreError> {
    let result = match store.get(path).await {
        Ok(result) => result,
        Err(e) if is_not_found(&e) => return Ok(false),
        Err(e) => return Err(map_error(describe, &format!("downloading {path}"), e)),
    };
    let bar = if show_progress {
        Bar::bytes(result.meta.size, "downloading")
    } else {
        Bar::hidden()
    };
    let mut stream = result.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| map_error(describe, &format!("downloading {path}"), e))?;
        out.write_all(&chunk)
            .map_err(io_err(Path::new(path.as_ref())))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(true)
}

impl ObjectBackend for S3Backend {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.block_on(self.get_one(self.path(key)))
    }

    fn get_head(&self, key: &str, len: u64) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        self.block_on(async {
            let options = GetOptions {
                range: Some((0..len).into()),
                ..Default::default()
            };
            match self.store.get_opts(&path, options).await {
                // A range past the end of a small object: read it whole.
                Err(object_store::Error::NotModified { .. }) => Ok(None),
                got => self.body_of(&path, got).await,
            }
        })
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let requests: Vec<_> = keys.iter().map(|k| self.get_one(self.path(k))).collect();
        self.block_on(
            futures::stream::iter(requests)
                .buffered(concurrency())
                .try_collect(),
        )
    }

    fn get_to_writer(
        &self,
        key: &str,
        out: &mut File,
        show_progress: bool,
    ) -> Result<bool, StoreError> {
        let path = self.path(key);
        self.block_on(download(
            &self.store,
            &path,
            out,
            show_progress,
            &self.describe,
        ))
    }

    fn download_many(&self, items: &[(String, PathBuf)], tmp_dir: &Path) -> Result<(), StoreError> {
        let bar = Bar::items(items.len() as u64, "downloading");
        let requests: Vec<_> = items
            .iter()
            .map(|(key, dest)| self.download_one(self.path(key), dest, tmp_dir, &bar))
            .collect();
        let result = self.block_on(
            futures::stream::iter(requests)
                .buffer_unordered(concurrency())
                .try_collect::<Vec<()>>(),
        );
        bar.finish();
        result.map(|_| ())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.block_on(self.exists_one(self.path(key)))
    }

    fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        let requests: Vec<_> = keys.iter().map(|k| self.exists_one(self.path(k))).collect();
        self.block_on(
            futures::stream::iter(requests)
                .buffered(concurrency())
                .try_collect(),
        )
    }

    fn put(&self, key: &str, payload: Payload) -> Result<(), StoreError> {
        let path = self.path(key);
        self.block_on(put_payload(
            self.store.clone(),
            path,
            payload,
            &self.describe,
            true,
        ))
    }

    fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StoreError> {
        let path = self.path(key);
        self.block_on(async {
            let options = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&path, PutPayload::from(bytes.clone()), options)
                .await
            {
                Ok(_) => Ok(true),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => Ok(false),
                Err(object_store::Error::NotImplemented { .. }) => {
                    // No conditional PUT: best effort.
                    match self.store.head(&path).await {
                        Ok(_) => Ok(false),
                        Err(e) if is_not_found(&e) => {
                            self.store
                                .put(&path, PutPayload::from(bytes))
                                .await
                                .map_err(|e| self.error(&format!("writing {path}"), e))?;
                            Ok(true)
                        }
                        Err(e) => Err(self.error(&format!("looking up {path}"), e)),
                    }
                }
                Err(e) => Err(self.error(&format!("writing {path}"), e)),
            }
        })
    }

    fn batch(&self) -> Box<dyn PutBatch + '_> {
        Box::new(S3Batch {
            backend: self,
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency())),
            tasks: Mutex::new(Vec::new()),
            failed: Arc::new(Mutex::new(None)),
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let dir = prefix_dir(prefix).trim_end_matches('/');
        let list_prefix = if self.prefix.is_empty() && dir.is_empty() {
            None
        } else if dir.is_empty() {
            Some(ObjectPath::from(self.prefix.as_str()))
        } else {
            Some(self.path(dir))
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .block_on(self.store.list(list_prefix.as_ref()).try_collect())
            .map_err(|e| self.error(&format!("listing {prefix}"), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let key = self.key_of(&meta.location)?;
                key.starts_with(prefix).then(|| ObjectInfo {
                    key,
                    size: meta.size,
                    modified: SystemTime::from(meta.last_modified),
                })
            })
            .collect())
    }

    fn list_children(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let path = self.path(dir.trim_end_matches('/'));
        let result = self
            .block_on(self.store.list_with_delimiter(Some(&path)))
            .map_err(|e| self.error(&format!("listing {dir}"), e))?;
        Ok(result
            .objects
            .into_iter()
            .filter_map(|meta| meta.location.filename().map(str::to_owned))
            .collect())
    }

    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let path = self.path(dir.trim_end_matches('/'));
        let result = self
            .block_on(self.store.list_with_delimiter(Some(&path)))
            .map_err(|e| self.error(&format!("listing {dir}"), e))?;
        Ok(result
            .common_prefixes
            .into_iter()
            .filter_map(|prefix| prefix.filename().map(str::to_owned))
            .collect())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.block_on(self.delete_one(self.path(key)))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        let requests: Vec<_> = keys.iter().map(|k| self.delete_one(self.path(k))).collect();
        self.block_on(
            futures::stream::iter(requests)
                .buffer_unordered(concurrency())
                .try_collect::<Vec<()>>(),
        )
        .map(|_| ())
    }

    fn touch(&self, key: &str) -> Result<(), StoreError> {
        // S3 has no "touch": write the same content again.
        match self.get(key)? {
            Some(bytes) => self.put(key, Payload::Bytes(bytes)),
            None => Ok(()),
        }
    }

    fn increment(&self, key: &str) -> Result<u64, StoreError> {
        let path = self.path(key);
        self.block_on(async {
            for attempt in 0..50u64 {
                let (current, version) =
                    match self.store.get_opts(&path, GetOptions::default()).await {
                        Ok(result) => {
                            let version = UpdateVersion {
                                e_tag: result.meta.e_tag.clone(),
                                version: result.meta.version.clone(),
                            };
                            let bytes = result
                                .bytes()
                                .await
                                .map_err(|e| self.error(&format!("reading {path}"), e))?;
                            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                            let value = text.parse::<u64>().map_err(|_| {
                                StoreError::Invalid(format!(
                                    "counter {path} holds {text:?}, not a number"
                                ))
                            })?;
                            (value, Some(version))
                        }
                        Err(e) if is_not_found(&e) => (0, None),
                        Err(e) => return Err(self.error(&format!("reading {path}"), e)),
                    };
                let next = current + 1;
                let mode = match version {
                    Some(version) => PutMode::Update(version),
                    None => PutMode::Create,
                };
                let options = PutOptions {
                    mode,
                    ..Default::default()
                };
                let payload = PutPayload::from(format!("{next}\n"));
                match self.store.put_opts(&path, payload.clone(), options).await {
                    Ok(_) => return Ok(next),
                    Err(
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ) => {
                        tokio::time::sleep(Duration::from_millis(5 + attempt * 10)).await;
                    }
                    Err(object_store::Error::NotImplemented { .. }) => {
                        // No conditional PUT on this server: best effort.
                        self.store
                            .put(&path, payload)
                            .await
                            .map_err(|e| self.error(&format!("writing {path}"), e))?;
                        return Ok(next);
                    }
                    Err(e) => return Err(self.error(&format!("writing {path}"), e)),
                }
            }
            Err(StoreError::Remote {
                store: self.describe.clone(),
                message: format!("counter {path}: too much contention"),
            })
        })
    }
}

/// Uploads in flight on the backend's runtime, at most [`concurrency()`] at once.
struct S3Batch<'a> {
    backend: &'a S3Backend,
    permits: Arc<tokio::sync::Semaphore>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    failed: Arc<Mutex<Option<StoreError>>>,
}

impl S3Batch<'_> {
    fn first_failure(&self) -> Option<StoreError> {
        self.failed.lock().unwrap().as_ref().map(clone_error)
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Auth { store, message } => StoreError::Auth {
            store: store.clone(),
            message: message.clone(),
        },
        StoreError::Unreachable { store, message } => StoreError::Unreachable {
            store: store.clone(),
            message: message.clone(),
        },
        StoreError::Remote { store, message } => StoreError::Remote {
            store: store.clone(),
            message: message.clone(),
        },
        other => StoreError::Remote {
            store: String::new(),
            message: other.to_string(),
        },
    }
}

impl PutBatch for S3Batch<'_> {
    fn put(&self, key: String, payload: Payload) -> Result<(), StoreError> {
        if let Some(e) = self.first_failure() {
            return Err(e);
        }
        let permit = self
            .backend
            .block_on(self.permits.clone().acquire_owned())
            .expect("semaphore never closed");
        if let Some(e) = self.first_failure() {
            return Err(e);
        }
        let store = self.backend.store.clone();
        let path = self.backend.path(&key);
        let describe = self.backend.describe.clone();
        let failed = self.failed.clone();
        let task = self.backend.runtime().spawn(async move {
            let result = put_payload(store, path, payload, &describe, false).await;
            drop(permit);
            if let Err(e) = result {
                failed.lock().unwrap().get_or_insert(e);
            }
        });
        let mut tasks = self.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(())
    }

    fn finish(&self) -> Result<(), StoreError> {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap());
        self.backend.block_on(async {
            for task in tasks {
                let _ = task.await;
            }
        });
        match self.failed.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for S3Batch<'_> {
    fn drop(&mut self) {
        // Unfinished uploads are abandoned; an incomplete multipart upload is no object.
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "# comment\n[default]\naws_access_key_id = AK\naws_secret_access_key=SK\n\n[other]\nregion = eu-west-1\n",
        )
        .unwrap();
        let ini = read_ini(&path);
        assert_eq!(ini["default"]["aws_access_key_id"], "AK");
        assert_eq!(ini["default"]["aws_secret_access_key"], "SK");
        assert_eq!(ini["other"]["region"], "eu-west-1");
    }

    #[test]
    fn errors_are_classified() {
        let e = object_store::Error::PermissionDenied {
            path: "x".into(),
            source: "SignatureDoesNotMatch".into(),
        };
        assert!(matches!(
            map_error("s3://b", "reading x", e),
            StoreError::Auth { .. }
        ));
        let e = object_store::Error::Generic {
            store: "S3",
            source: "error sending request: client error (Connect): tcp connect error: Connection refused".into(),
        };
        assert!(matches!(
            map_error("s3://b", "reading x", e),
            StoreError::Unreachable { .. }
        ));
    }
}
