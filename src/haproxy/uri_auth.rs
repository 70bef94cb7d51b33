//! The statistics page's settings of a proxy: its `stats` keywords.
//!
//! Reproduces `uri_auth.c` and `include/types/uri_auth.h` (1.5-dev8), with HAProxy 2.6's
//! keywords and messages (cfgparse-listen.c): `stats enable` turns the page on at the
//! default URI, `stats uri` moves it, `stats refresh` asks browsers to reload it,
//! `stats scope` limits the proxies it shows, `stats admin if|unless <cond>` lets requests
//! matching the condition change servers' state from it, `stats realm`, `stats
//! hide-version`, `stats show-legends`, `stats show-node` and `stats show-desc` shape it.
//! The page itself is served by `proto_http.rs` (`http_stats_check_uri`,
//! `http_handle_stats`) and rendered by `stats.rs`.

use crate::haproxy::acl::Condition;

/// `STATS_DEFAULT_URI`: where `stats enable` alone puts the page.
pub const STATS_DEFAULT_URI: &str = "/haproxy?stats";

/// `STATS_DEFAULT_REALM`.
pub const STATS_DEFAULT_REALM: &str = "HAProxy Statistics";

/// `struct uri_auth`: one proxy's statistics page.
#[derive(Clone, Debug)]
pub struct UriAuth {
    /// `uri_prefix`: requests whose URI (or path, when it starts with `/`) starts with it
    /// get the page.
    pub uri_prefix: String,
    /// `auth_realm`: the realm of the page's authentication (`stats realm`).
    pub auth_realm: Option<String>,
    /// `refresh`: seconds between reloads the page asks for (`Refresh:` header); 0: none.
    pub refresh: u64,
    /// `scope`: the proxies the page shows (`.` for the proxy serving it); empty: all.
    pub scope: Vec<String>,
    /// `admin_rules`: a request matching one of these may change servers (POST).
    pub admin_rules: Vec<Condition>,
    /// `STAT_HIDEVER`: no version on the page.
    pub hide_version: bool,
    /// `STAT_SHLGNDS`: legends (addresses, cookies) on the page.
    pub show_legends: bool,
    /// `node`: the node name shown (`stats show-node`), `Some("")` for the host name.
    pub node: Option<String>,
    /// `desc`: the description shown (`stats show-desc`).
    pub desc: Option<String>,
}

impl Default for UriAuth {
    fn default() -> Self {
        UriAuth {
            uri_prefix: STATS_DEFAULT_URI.to_string(),
            auth_realm: None,
            refresh: 0,
            scope: Vec::new(),
            admin_rules: Vec::new(),
            hide_version: false,
            show_legends: false,
            node: None,
            desc: None,
        }
    }
}

/// uri_auth.c:stats_check_init_uri_auth() in 1.5-dev8: the proxy's page settings,
/// created with the defaults on the first `stats` keyword.
pub fn stats_check_init_uri_auth(root: &mut Option<Box<UriAuth>>) -> &mut UriAuth {
    root.get_or_insert_with(Box::default)
}
