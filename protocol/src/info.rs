//! The `INFO` a server sends on connect.

use serde::{Deserialize, Serialize};

use crate::limits::DEFAULT_MAX_PAYLOAD;

/// The `INFO` fields nats-server sends a client (the client-relevant subset of nats-server's
/// `server.Info`, with the same JSON names and the same `omitempty` choices). Unknown fields are
/// ignored on deserialization; missing fields take [`ServerInfo::default`]'s values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    /// Server protocol version; nats-server sends 1.
    pub proto: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Go version on nats-server; free text for other servers.
    pub go: String,
    pub host: String,
    pub port: u16,
    /// The server supports `HPUB`/`HMSG`.
    pub headers: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    pub max_payload: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub client_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Lame-duck mode.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
}

impl Default for ServerInfo {
    /// Empty strings, `proto: 1`, `max_payload: 1 MiB`, everything else false/0/empty.
    fn default() -> Self {
        Self {
            server_id: String::new(),
            server_name: String::new(),
            version: String::new(),
            proto: 1,
            git_commit: None,
            go: String::new(),
            host: String::new(),
            port: 0,
            headers: false,
            auth_required: false,
            tls_required: false,
            max_payload: DEFAULT_MAX_PAYLOAD,
            client_id: 0,
            client_ip: None,
            nonce: None,
            connect_urls: Vec::new(),
            ldm: false,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_nats_server_info_and_ignores_unknown_fields() {
        // As sent by nats-server 2.10+ (with fields this struct does not model).
        let json = br#"{"server_id":"NA4H","server_name":"WP1","version":"2.10.1","proto":1,
            "go":"go1.21","host":"0.0.0.0","port":4222,"headers":true,"max_payload":1048576,
            "client_id":5,"client_ip":"127.0.0.1","api_lvl":4,"xkey":"XDHX","jetstream":true}"#;
        let info: ServerInfo = serde_json::from_slice(json).expect("valid");
        assert_eq!(info.server_id, "NA4H");
        assert_eq!(info.port, 4222);
        assert!(info.headers);
        assert_eq!(info.max_payload, 1_048_576);
        assert_eq!(info.client_id, 5);
        assert_eq!(info.client_ip.as_deref(), Some("127.0.0.1"));
        assert!(!info.auth_required);
    }

    #[test]
    fn omits_false_auth_and_tls_like_nats_server() {
        let s = serde_json::to_string(&ServerInfo::default()).expect("serializes");
        assert!(!s.contains("auth_required"), "{s}");
        assert!(!s.contains("tls_required"), "{s}");
        assert!(!s.contains("client_id"), "{s}");
        assert!(s.contains("\"headers\":false"), "{s}");
        assert!(s.contains("\"max_payload\":1048576"), "{s}");
    }
}
