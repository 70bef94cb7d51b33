//! The scenarios shipped with haflow, embedded in the binary so that `haflow scenario`
//! works from anywhere: each `scenarios/NAME.toml` with its golden call-flow listing
//! `scenarios/golden/NAME.txt` (the listing the book includes).

use crate::scenario::spec::Scenario;

/// One shipped scenario.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Its name (the file name without `.toml`).
    pub name: &'static str,
    /// The scenario file.
    pub toml: &'static str,
    /// Its golden listing.
    pub golden: &'static str,
}

impl Entry {
    /// The parsed scenario (the files are checked by the test suite, so this only fails
    /// while one is being edited).
    pub fn scenario(&self) -> Result<Scenario, String> {
        Scenario::parse(self.toml).map_err(|e| format!("scenarios/{}.toml: {e}", self.name))
    }
}

macro_rules! entries {
    ($($name:literal),* $(,)?) => {
        &[$(Entry {
            name: $name,
            toml: include_str!(concat!("../../scenarios/", $name, ".toml")),
            golden: include_str!(concat!("../../scenarios/golden/", $name, ".txt")),
        }),*]
    };
}

/// Every shipped scenario, in the order the book presents them.
pub const SCENARIOS: &[Entry] = entries![
    "startup",
    "basic-get",
    "keep-alive",
    "websocket",
    "connection-close",
    "post-chunked",
    "round-robin",
    "acl-switching",
    "deny-and-return",
    "rate-limit",
    "server-down-checks",
    "connect-refused-redispatch",
    "connect-timeout-redispatch",
    "server-timeout-504",
    "malformed-400",
    "slow-client-408",
    "server-maxconn-queue",
    "frontend-maxconn",
    "global-maxconn",
    "reload",
    "tcp-mode",
    "client-reset",
    "server-close-mid-body",
    "large-body-small-buffer",
    "proxy-protocol",
    "compression",
    "walkthrough",
];

/// The shipped scenario called `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    SCENARIOS.iter().find(|e| e.name == name)
}
