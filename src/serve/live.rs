//! A running build's log, live: server-sent events read from the log's stream in the store
//! (which the build appends to every few tens of milliseconds, [`LIVE_INTERVAL`]). Each
//! `log` event carries new text as a JSON string, cut only between whole UTF-8 characters;
//! its id (`chunk:byte`) lets a reconnecting browser go on where it was. When the record
//! says the build ended, the rest comes from the kept log and an `end` event gives the
//! status.
//!
//! [`LIVE_INTERVAL`]: crate::lifecycle::log::LIVE_INTERVAL

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, StreamExt};

use super::model::ViewError;
use super::{AppState, blocking, view_error};

/// How often the stream is looked at.
const POLL: Duration = Duration::from_millis(25);
/// Every how many looks the record is read too (has the build ended?).
const RECORD_EVERY: u32 = 8;

struct Follow {
    state: AppState,
    project: String,
    number: u64,
    /// The next chunk to read.
    seq: u64,
    /// Bytes of the log consumed so far.
    offset: usize,
    /// The start of a UTF-8 character cut by a chunk's end.
    carry: Vec<u8>,
    polls: u32,
    done: bool,
    /// Past this, a build that has not ended is not running any more (killed): the
    /// stream ends instead of waiting for it for ever.
    deadline: Option<jiff::Timestamp>,
}

/// `GET /api/projects/{project}/builds/{number}/log/stream`.
pub(super) async fn stream(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, u64)>,
    headers: HeaderMap,
) -> axum::response::Response {
    // Checked once up front: an unknown build is a 404, not an empty stream.
    let check = {
        let project = project.clone();
        blocking(&state, move |c| c.build_state(&project, number)).await
    };
    let deadline = match check {
        Ok(state) => state.deadline,
        Err(e) => return view_error(&state, true, &e),
    };
    let (seq, offset) = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(':'))
        .and_then(|(s, o)| Some((s.parse().ok()?, o.parse().ok()?)))
        .unwrap_or((0, 0));
    let follow = Follow {
        state,
        project,
        number,
        seq,
        offset,
        carry: Vec::new(),
        polls: 0,
        done: false,
        deadline,
    };
    let events = stream::unfold(follow, next).flat_map(stream::iter);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The next events: new text as soon as there is some, or the end.
async fn next(mut follow: Follow) -> Option<(Vec<Result<Event, Infallible>>, Follow)> {
    if follow.done {
        return None;
    }
    loop {
        let (project, number, seq) = (follow.project.clone(), follow.number, follow.seq);
        let check_record = follow.polls.is_multiple_of(RECORD_EVERY);
        follow.polls += 1;
        let read = blocking(&follow.state, move |c| {
            let chunks = c.log_chunks(&project, number, seq)?;
            let ended = if chunks.is_empty() && check_record {
                c.build_state(&project, number)?.ended
            } else {
                false
            };
            Ok((chunks, ended))
        })
        .await;
        let (chunks, ended) = match read {
            Ok(read) => read,
            Err(e) => {
                // Said once; the browser retries (a store that comes back goes on).
                follow.done = true;
                return Some((vec![Ok(failure(&e))], follow));
            }
        };
        if !chunks.is_empty() {
            follow.seq += chunks.len() as u64;
            let mut bytes = std::mem::take(&mut follow.carry);
            for chunk in &chunks {
                follow.offset += chunk.len();
                bytes.extend_from_slice(chunk);
            }
            let events = follow.text_event(bytes);
            return Some((events, follow));
        }
        if ended {
            return Some((follow.finish().await, follow));
        }
        if check_record && follow.deadline.is_some_and(|d| jiff::Timestamp::now() > d) {
            follow.done = true;
            let gone = ViewError::Damaged(format!(
                "build {} has not ended by its timeout: its process is gone",
                follow.number
            ));
            return Some((vec![Ok(failure(&gone))], follow));
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Follow {
    /// A `log` event of the whole characters of `bytes`; a cut character waits.
    fn text_event(&mut self, mut bytes: Vec<u8>) -> Vec<Result<Event, Infallible>> {
        let keep = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => bytes.len(),
        };
        self.carry = bytes.split_off(keep);
        if bytes.is_empty() {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(&bytes);
        let event = Event::default()
            .event("log")
            .id(format!("{}:{}", self.seq, self.offset))
            .json_data(text.as_ref())
            .unwrap_or_else(|_| Event::default().event("log").data("\"\""));
        vec![Ok(event)]
    }

    /// The rest of the kept log, then `end` with the build's status.
    async fn finish(&mut self) -> Vec<Result<Event, Infallible>> {
        self.done = true;
        let (project, number) = (self.project.clone(), self.number);
        let result = blocking(&self.state, move |c| {
            let (bytes, _) = c.log_bytes(&project, number).unwrap_or_default();
            let status = c.build_state(&project, number)?.status;
            Ok((bytes, status))
        })
        .await;
        match result {
            Ok((bytes, status)) => {
                let mut rest = std::mem::take(&mut self.carry);
                rest.extend_from_slice(bytes.get(self.offset..).unwrap_or_default());
                self.offset = bytes.len();
                let mut events = self.text_event(rest);
                events.push(Ok(Event::default()
                    .event("end")
                    .json_data(&status)
                    .unwrap_or_default()));
                events
            }
            Err(e) => vec![Ok(failure(&e))],
        }
    }
}

fn failure(error: &ViewError) -> Event {
    Event::default()
        .event("failure")
        .json_data(error.to_string())
        .unwrap_or_default()
}
