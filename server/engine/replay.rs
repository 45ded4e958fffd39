//! Canned answers for outbound HTTP calls: a debug run or a flow test that gives them runs its
//! `http.request` nodes against them instead of the network. A call is answered by the first
//! canned answer whose method and URL match (the URL exactly, or a prefix when the canned URL
//! ends in `*`); a call nothing matches fails the node as a refused call, and is remembered so
//! a test fails on it even when the flow handles the error.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// At most this many canned answers per run.
pub const MAX_CANNED: usize = 100;

/// One canned answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    /// The method it answers (any method when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The URL it answers, query included; a trailing `*` answers every URL it starts.
    pub url: String,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Value,
}

fn ok_status() -> u16 {
    200
}

/// A call made during the run, as the trace and the test report show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub method: String,
    pub url: String,
    pub answered: bool,
}

/// The canned answers of one run, and the calls it made.
#[derive(Debug, Default)]
pub struct Replay {
    answers: Vec<Canned>,
    calls: Mutex<Vec<Call>>,
}

impl Replay {
    pub fn new(answers: Vec<Canned>) -> Replay {
        Replay {
            answers,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The answer to `method url`, if one matches; the call is recorded either way.
    pub fn answer(&self, method: &str, url: &str) -> Option<&Canned> {
        let found = self.answers.iter().find(|c| {
            let method_ok = c
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            let url_ok = match c.url.strip_suffix('*') {
                Some(prefix) => url.starts_with(prefix),
                None => c.url == url,
            };
            method_ok && url_ok
        });
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                method: method.to_string(),
                url: url.to_string(),
                answered: found.is_some(),
            });
        }
        found
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned(method: Option<&str>, url: &str) -> Canned {
        Canned {
            method: method.map(str::to_string),
            url: url.into(),
            status: 200,
            headers: BTreeMap::new(),
            body: Value::Null,
        }
    }

    #[test]
    fn the_first_matching_answer_wins_and_every_call_is_recorded() {
        let r = Replay::new(vec![
            canned(Some("POST"), "https://mail.example/send"),
            canned(None, "https://api.example/v1/*"),
        ]);
        assert!(r.answer("post", "https://mail.example/send").is_some());
        assert!(r.answer("GET", "https://mail.example/send").is_none());
        assert!(
            r.answer("GET", "https://api.example/v1/users?id=3")
                .is_some()
        );
        assert!(r.answer("GET", "https://api.example/v2/users").is_none());
        let answered: Vec<bool> = r.calls().iter().map(|c| c.answered).collect();
        assert_eq!(answered, vec![true, false, true, false]);
    }
}
