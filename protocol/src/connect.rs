//! The `CONNECT` options a client sends.

use serde::{Deserialize, Deserializer, Serialize};

use crate::ProtocolError;

/// `CONNECT` options.
///
/// Deserialization follows nats-server (`processConnect` unmarshals into a copy of
/// `defaultOpts = ClientOpts{Verbose: true, Pedantic: true, Echo: true}`): unknown fields are
/// ignored, a missing (or `null`) field keeps its default, and the defaults are
/// **`verbose: true`, `pedantic: true`, `echo: true`**, everything else false / 0 / `None`.
/// So `CONNECT {}` is a verbose, pedantic connection that gets `+OK` for every op, as on
/// nats-server. Clients that want quiet connections send `"verbose":false` (all real clients do).
///
/// Known difference: Go's `encoding/json` matches keys case-insensitively (`"Verbose"` works on
/// nats-server); here keys must be spelled in lower case as documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connect {
    /// Answer every successful op with `+OK`.
    #[serde(deserialize_with = "null_as_true")]
    pub verbose: bool,
    /// Extra checks (e.g. publish subjects must be valid literal subjects).
    #[serde(deserialize_with = "null_as_true")]
    pub pedantic: bool,
    /// Deliver the connection's own publishes to its own subscriptions.
    #[serde(deserialize_with = "null_as_true")]
    pub echo: bool,
    /// The client understands `HPUB`/`HMSG`.
    #[serde(deserialize_with = "null_as_false")]
    pub headers: bool,
    /// The client wants "no responders" status messages (requires `headers`).
    #[serde(deserialize_with = "null_as_false")]
    pub no_responders: bool,
    /// Client protocol version: 0 (original) or 1 (understands async INFO). Values that do not
    /// fit are stored as 255 and rejected by [`Connect::from_json`].
    #[serde(deserialize_with = "protocol_version")]
    pub protocol: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(deserialize_with = "null_as_false")]
    pub tls_required: bool,
}

impl Default for Connect {
    /// nats-server's defaults for a `CONNECT {}`: verbose, pedantic and echo on.
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: None,
            lang: None,
            version: None,
            user: None,
            pass: None,
            auth_token: None,
            tls_required: false,
        }
    }
}

/// Highest client protocol version nats-server accepts (`ClientProtoInfo`).
pub const MAX_CLIENT_PROTOCOL: u8 = 1;

impl Connect {
    /// Parse and validate the JSON argument of a `CONNECT` line, with nats-server's outcomes:
    /// JSON that does not parse → [`ProtocolError::InvalidConnect`] (closed without `-ERR`);
    /// `protocol` outside 0..=1 → [`ProtocolError::BadClientProtocol`];
    /// `no_responders` without `headers` → [`ProtocolError::NoRespondersRequiresHeaders`].
    pub fn from_json(json: &[u8]) -> Result<Self, ProtocolError> {
        let c: Connect =
            serde_json::from_slice(json).map_err(|e| ProtocolError::InvalidConnect {
                reason: e.to_string(),
            })?;
        if c.protocol > MAX_CLIENT_PROTOCOL {
            return Err(ProtocolError::BadClientProtocol);
        }
        if c.no_responders && !c.headers {
            return Err(ProtocolError::NoRespondersRequiresHeaders);
        }
        Ok(c)
    }
}

fn null_as_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

fn null_as_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn protocol_version<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    Ok(match Option::<i64>::deserialize(d)? {
        None => 0,
        Some(v) => u8::try_from(v).unwrap_or(u8::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_connect_takes_nats_server_defaults() {
        let c = Connect::from_json(b"{}").expect("valid");
        assert!(c.verbose && c.pedantic && c.echo);
        assert!(!c.headers && !c.no_responders && !c.tls_required);
        assert_eq!(c.protocol, 0);
        assert_eq!(c, Connect::default());
    }

    #[test]
    fn connect_fields_unknown_ignored_null_keeps_default() {
        let c = Connect::from_json(
            br#"{"verbose":false,"pedantic":null,"echo":false,"headers":true,"no_responders":true,
                "protocol":1,"name":"n","lang":"rust","version":"1","unknown":[1,2],"tls_required":false}"#,
        )
        .expect("valid");
        assert!(!c.verbose);
        assert!(c.pedantic, "null keeps the default");
        assert!(!c.echo && c.headers && c.no_responders);
        assert_eq!(c.protocol, 1);
        assert_eq!(c.name.as_deref(), Some("n"));
        assert_eq!(c.lang.as_deref(), Some("rust"));
    }

    #[test]
    fn connect_rejections_match_nats_server() {
        assert_eq!(
            Connect::from_json(br#"{"protocol":2}"#),
            Err(ProtocolError::BadClientProtocol)
        );
        assert_eq!(
            Connect::from_json(br#"{"protocol":-1}"#),
            Err(ProtocolError::BadClientProtocol)
        );
        assert_eq!(
            Connect::from_json(br#"{"no_responders":true,"headers":false}"#),
            Err(ProtocolError::NoRespondersRequiresHeaders)
        );
        for bad in [&b"{oops}"[..], b"", b"{\"verbose\":\"yes\"}", b"{} x"] {
            assert!(
                matches!(
                    Connect::from_json(bad),
                    Err(ProtocolError::InvalidConnect { .. })
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
