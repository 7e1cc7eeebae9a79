//! The web console, `wasmbuild serve`: an HTTP server (axum) over the store, read-only.
//! Pages are rendered on the server from templates that escape everything by default
//! (minijinja); pictures are SVG drawn here ([`svg`]); the only script is the live log's
//! (`static/live.js`, server-sent events). Every page has its JSON twin under `/api/`,
//! made from the same view ([`model`]), so the two say the same thing.
//!
//! Safety: it binds to loopback unless told otherwise, and anywhere else only with a
//! bearer token; names in URLs are checked before they name a store reference; artifact
//! files come from tree manifests in the store, never from a filesystem path, are sent as
//! downloads (never rendered), and symlinks are listed, not followed. A damaged record or
//! an unreachable store is a page saying so; the server stays up and recovers when the
//! store is back.

mod live;
pub mod model;
pub mod svg;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use minijinja::{Environment, Value, context};
use serde::Deserialize;

use crate::store::{EntryKind, Store};
use model::{Console, ViewError, ViewResult};

/// What the server shares between requests.
struct Shared {
    console: Arc<Console>,
    templates: Environment<'static>,
    token: Option<String>,
}

type AppState = Arc<Shared>;

/// The statuses the history filter offers.
const STATUSES: [&str; 6] = [
    "SUCCEEDED",
    "FAILED",
    "FAULT",
    "TIMED_OUT",
    "STOPPED",
    "IN_PROGRESS",
];

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("projects.html", include_str!("templates/projects.html")),
        ("history.html", include_str!("templates/history.html")),
        ("build.html", include_str!("templates/build.html")),
        ("report.html", include_str!("templates/report.html")),
        ("batch.html", include_str!("templates/batch.html")),
        ("error.html", include_str!("templates/error.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env.add_filter("duration", |seconds: f64| svg::duration_text(seconds));
    env.add_filter("size", |bytes: u64| {
        indicatif::HumanBytes(bytes).to_string()
    });
    env
}

/// The console's routes over `store`; `token`, if given, is required of every request.
pub fn router(store: Store, token: Option<String>) -> Router {
    let state = Arc::new(Shared {
        console: Arc::new(Console::new(store)),
        templates: templates(),
        token,
    });
    Router::new()
        .route("/", get(projects_page))
        .route("/projects/{project}", get(history_page))
        .route("/projects/{project}/builds/{number}", get(build_page))
        .route("/projects/{project}/builds/{number}/log.txt", get(log_text))
        .route(
            "/projects/{project}/builds/{number}/files/{set}/{*path}",
            get(artifact_file),
        )
        .route(
            "/projects/{project}/builds/{number}/zip/{set}",
            get(artifact_zip),
        )
        .route("/projects/{project}/batches/{number}", get(batch_page))
        .route("/reports/{group}/{number}", get(report_page))
        .route("/static/console.css", get(css))
        .route("/static/live.js", get(live_js))
        .route("/api/projects", get(projects_api))
        .route("/api/projects/{project}/builds", get(history_api))
        .route("/api/projects/{project}/builds/{number}", get(build_api))
        .route("/api/projects/{project}/builds/{number}/log", get(log_api))
        .route(
            "/api/projects/{project}/builds/{number}/log/stream",
            get(live::stream),
        )
        .route(
            "/api/projects/{project}/builds/{number}/artifacts/{set}",
            get(artifact_api),
        )
        .route("/api/projects/{project}/batches/{number}", get(batch_api))
        .route("/api/reports/{group}/{number}", get(report_api))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Serves the console on `listen` until Ctrl-C; says where on stdout once listening.
pub async fn serve(store: Store, listen: SocketAddr, token: Option<String>) -> std::io::Result<()> {
    let describe = store.spec();
    let app = router(store, token);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    println!("wasmbuild: serving {describe} at http://{address}/");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// Every response gets the security headers; with a token, every request must carry it
/// (`Authorization: Bearer`, or the cookie a `?token=` visit sets).
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let headers = request.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("wasmbuild_token="))
            .next();
        let query = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("token="));
        let ok = |given: Option<&str>| given.is_some_and(|g| same(g.as_bytes(), token.as_bytes()));
        if ok(query) {
            // Once, from a link: kept as a cookie, and the token leaves the address bar.
            let mut response = Redirect::to(request.uri().path()).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "wasmbuild_token={token}; HttpOnly; SameSite=Strict; Path=/"
            )) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return secure(response);
        }
        if !ok(bearer) && !ok(cookie) {
            let mut response = error_response(
                &state,
                request.uri().path().starts_with("/api/"),
                StatusCode::UNAUTHORIZED,
                "This console needs its token: send `Authorization: Bearer TOKEN`, or open \
                 any page once with `?token=TOKEN`.",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wasmbuild\""),
            );
            return secure(response);
        }
    }
    secure(next.run(request).await)
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Console) -> ViewResult<T> + Send + 'static,
) -> ViewResult<T> {
    let console = state.console.clone();
    tokio::task::spawn_blocking(move || work(&console))
        .await
        .unwrap_or_else(|e| Err(ViewError::Unavailable(format!("the request failed: {e}"))))
}

fn status_of(error: &ViewError) -> StatusCode {
    match error {
        ViewError::NotFound(_) => StatusCode::NOT_FOUND,
        ViewError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ViewError::Damaged(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ViewError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn error_response(state: &Shared, api: bool, status: StatusCode, message: &str) -> Response {
    if api {
        return (
            status,
            axum::Json(serde_json::json!({ "error": message, "status": status.as_u16() })),
        )
            .into_response();
    }
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED => "Token needed",
        StatusCode::SERVICE_UNAVAILABLE => "Store unavailable",
        _ => "Damaged in the store",
    };
    let body = render(
        state,
        "error.html",
        "/api/projects",
        context! { title, message },
    );
    (status, body).into_response()
}

fn view_error(state: &Shared, api: bool, error: &ViewError) -> Response {
    error_response(state, api, status_of(error), &error.to_string())
}

/// A view as the templates see it.
fn serialized<T: serde::Serialize>(view: &T) -> Value {
    Value::from(minijinja::value::Serde(view))
}

/// Renders a page; a template error is a bug, shown as one.
fn render(state: &Shared, name: &str, api: &str, ctx: Value) -> Html<String> {
    let store = state.console.store().spec();
    let ctx = context! { store, api, ..ctx };
    match state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => Html(html),
        Err(e) => Html(format!(
            "<!doctype html><title>error</title><p>template {}: {}</p>",
            name,
            quick_xml::escape::escape(e.to_string().as_str())
        )),
    }
}

fn page<T: serde::Serialize>(
    state: &Shared,
    result: ViewResult<T>,
    name: &str,
    api: &str,
    extra: impl FnOnce(&T) -> Value,
) -> Response {
    match result {
        Ok(view) => {
            let more = extra(&view);
            let ctx = context! { view => serialized(&view), ..more };
            render(state, name, api, ctx).into_response()
        }
        Err(e) => view_error(state, false, &e),
    }
}

fn json<T: serde::Serialize>(state: &Shared, result: ViewResult<T>) -> Response {
    match result {
        Ok(view) => axum::Json(view).into_response(),
        Err(e) => view_error(state, true, &e),
    }
}

async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    let api = request.uri().path().starts_with("/api/");
    error_response(
        &state,
        api,
        StatusCode::NOT_FOUND,
        &format!("Nothing here: {}", request.uri().path()),
    )
}

// ----- pages and their JSON twins ---------------------------------------------------------

async fn projects_page(State(state): State<AppState>) -> Response {
    let result = blocking(&state, |c| c.projects()).await;
    page(
        &state,
        result,
        "projects.html",
        "/api/projects",
        |_| context! {},
    )
}

async fn projects_api(State(state): State<AppState>) -> Response {
    let result = blocking(&state, |c| c.projects()).await;
    json(&state, result)
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    page: Option<usize>,
    status: Option<String>,
}

async fn history(
    state: &AppState,
    project: String,
    query: HistoryQuery,
) -> ViewResult<model::HistoryView> {
    let status = query.status.filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ViewError::BadRequest(format!(
            "unknown status {s:?} (one of {})",
            STATUSES.join(", ")
        )));
    }
    blocking(state, move |c| {
        c.history(&project, query.page.unwrap_or(1), status.as_deref())
    })
    .await
}

async fn history_page(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let api = format!("/api/projects/{project}/builds");
    let result = history(&state, project, query).await;
    page(&state, result, "history.html", &api, |_| {
        context! { statuses => STATUSES }
    })
}

async fn history_api(
    State(state): State<AppState>,
    Path(project): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let result = history(&state, project, query).await;
    json(&state, result)
}

async fn build_page(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    let api = format!("/api/projects/{project}/builds/{number}");
    let result = blocking(&state, move |c| {
        let view = c.build(&project, number)?;
        let log = if view.live {
            None
        } else {
            Some(c.log_for(&view))
        };
        Ok((view, log))
    })
    .await;
    match result {
        Ok((view, log)) => {
            let timeline = Value::from_safe_string(svg::timeline(&view.phases));
            let (log, log_error) = match log {
                Some(Ok(log)) => (serialized(&log), String::new()),
                Some(Err(e)) => (Value::from(()), e.to_string()),
                None => (Value::from(()), String::new()),
            };
            let ctx = context! { view => serialized(&view), timeline, log, log_error };
            render(&state, "build.html", &api, ctx).into_response()
        }
        Err(e) => view_error(&state, false, &e),
    }
}

async fn build_api(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    let result = blocking(&state, move |c| c.build(&project, number)).await;
    json(&state, result)
}

async fn log_api(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    let result = blocking(&state, move |c| c.log(&project, number)).await;
    json(&state, result)
}

async fn log_text(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    match blocking(&state, move |c| c.log_bytes(&project, number)).await {
        Ok((bytes, _)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response()
        }
        Err(e) => view_error(&state, false, &e),
    }
}

async fn artifact_api(
    State(state): State<AppState>,
    Path((project, number, set)): Path<(String, u64, String)>,
) -> Response {
    let result = blocking(&state, move |c| {
        let (reference, tree) = c.artifact_set(&project, number, &set)?;
        Ok(serde_json::json!({ "identifier": set, "reference": reference, "entries": tree.entries }))
    })
    .await;
    json(&state, result)
}

/// One artifact file, as a download. The path is looked up in the set's manifest (so it
/// can only name a file of the set); a symlink is refused, not followed.
async fn artifact_file(
    State(state): State<AppState>,
    Path((project, number, set, path)): Path<(String, u64, String, String)>,
) -> Response {
    let result = blocking(&state, move |c| {
        if path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(ViewError::BadRequest(format!("invalid path {path:?}")));
        }
        let (_, tree) = c.artifact_set(&project, number, &set)?;
        let entry = tree
            .entries
            .iter()
            .find(|e| e.path == path)
            .ok_or_else(|| ViewError::NotFound(format!("artifact set {set} has no file {path}")))?;
        match entry.kind {
            EntryKind::File => Ok((path.clone(), c.file_content(entry)?)),
            EntryKind::Symlink => Err(ViewError::BadRequest(format!(
                "{path} is a symlink (to {}); links are not followed",
                entry.target.as_deref().unwrap_or("?")
            ))),
            EntryKind::Dir => Err(ViewError::BadRequest(format!("{path} is a directory"))),
        }
    })
    .await;
    match result {
        Ok((path, bytes)) => download(&path, "application/octet-stream", bytes),
        Err(e) => view_error(&state, false, &e),
    }
}

fn download(name: &str, kind: &'static str, bytes: Vec<u8>) -> Response {
    let file = name.rsplit('/').next().unwrap_or(name);
    let safe: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    (headers, bytes).into_response()
}

/// A whole artifact set as a zip, made from the store (symlinks as links, not followed).
async fn artifact_zip(
    State(state): State<AppState>,
    Path((project, number, set)): Path<(String, u64, String)>,
) -> Response {
    let name = format!("{set}.zip");
    let result = blocking(&state, move |c| {
        let (_, tree) = c.artifact_set(&project, number, &set)?;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let failed = |e: &dyn std::fmt::Display| ViewError::Unavailable(format!("zip: {e}"));
        for entry in &tree.entries {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .unix_permissions(entry.mode & 0o777);
            match entry.kind {
                EntryKind::Dir => zip
                    .add_directory(entry.path.as_str(), options)
                    .map_err(|e| failed(&e))?,
                EntryKind::Symlink => zip
                    .add_symlink(
                        entry.path.as_str(),
                        entry.target.as_deref().unwrap_or_default(),
                        options,
                    )
                    .map_err(|e| failed(&e))?,
                EntryKind::File => {
                    let content = c.file_content(entry)?;
                    zip.start_file(entry.path.as_str(), options)
                        .map_err(|e| failed(&e))?;
                    std::io::Write::write_all(&mut zip, &content).map_err(|e| failed(&e))?;
                }
            }
        }
        Ok(zip.finish().map_err(|e| failed(&e))?.into_inner())
    })
    .await;
    match result {
        Ok(bytes) => download(&name, "application/zip", bytes),
        Err(e) => view_error(&state, false, &e),
    }
}

async fn batch_page(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    let api = format!("/api/projects/{project}/batches/{number}");
    let result = blocking(&state, move |c| c.batch(&project, number)).await;
    page(&state, result, "batch.html", &api, |view| {
        let key = view.project_key.clone();
        let graph = svg::batch_graph(&view.nodes, |node| {
            node.build_number
                .map(|n| format!("/projects/{key}/builds/{n}"))
        });
        context! { graph => Value::from_safe_string(graph) }
    })
}

async fn batch_api(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
) -> Response {
    let result = blocking(&state, move |c| c.batch(&project, number)).await;
    json(&state, result)
}

async fn report_page(
    State(state): State<AppState>,
    Path((group, number)): Path<(String, u64)>,
) -> Response {
    let api = format!("/api/reports/{group}/{number}");
    let result = blocking(&state, move |c| c.report(&group, number)).await;
    page(&state, result, "report.html", &api, |view| {
        context! {
            trend => Value::from_safe_string(svg::trend(&view.trend)),
            summary_line => view.report.log_line(),
        }
    })
}

async fn report_api(
    State(state): State<AppState>,
    Path((group, number)): Path<(String, u64)>,
) -> Response {
    let result = blocking(&state, move |c| c.report(&group, number)).await;
    json(&state, result)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/console.css"),
    )
        .into_response()
}

async fn live_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/live.js"),
    )
        .into_response()
}
