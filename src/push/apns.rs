//! Apple Push Notification service through `a2`, with token (`.p8` key) authentication.
//!
//! a2 talks only to Apple's production or sandbox host, so this sender cannot be pointed at a
//! local fake: its payload is pinned by a unit test and the worker is tested with a fake sender.
use std::collections::BTreeMap;
use std::path::PathBuf;

use a2::request::notification::{
    CollapseId, DefaultNotificationBuilder, NotificationBuilder, NotificationOptions, PushType,
};
use a2::request::payload::{APS, PayloadLike};
use a2::{Client, ClientConfig, Endpoint, ErrorReason};
use anyhow::{Context, bail};
use async_trait::async_trait;
use serde::Serialize;

use super::{Push, PushSender, SendOutcome};
use crate::config::PushArgs;

/// The settings a2 needs, all or none of which must be given.
#[derive(Debug, Clone)]
pub struct ApnsConfig {
    pub key_file: PathBuf,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id.
    pub topic: String,
    pub sandbox: bool,
}

impl ApnsConfig {
    /// `None` when APNs is not configured at all; an error when it is only partly configured.
    pub fn from_args(args: &PushArgs) -> anyhow::Result<Option<Self>> {
        match (
            &args.apns_key_file,
            &args.apns_key_id,
            &args.apns_team_id,
            &args.apns_topic,
        ) {
            (None, None, None, None) => Ok(None),
            (Some(key_file), Some(key_id), Some(team_id), Some(topic)) => Ok(Some(Self {
                key_file: key_file.clone(),
                key_id: key_id.clone(),
                team_id: team_id.clone(),
                topic: topic.clone(),
                sandbox: args.apns_sandbox,
            })),
            _ => bail!(
                "APNs needs all of --apns-key-file, --apns-key-id, --apns-team-id and --apns-topic"
            ),
        }
    }
}

pub struct ApnsSender {
    client: Client,
    topic: String,
}

impl ApnsSender {
    pub fn new(config: ApnsConfig) -> anyhow::Result<Self> {
        let key = std::fs::File::open(&config.key_file)
            .with_context(|| format!("opening the APNs key {}", config.key_file.display()))?;
        let endpoint = if config.sandbox {
            Endpoint::Sandbox
        } else {
            Endpoint::Production
        };
        let client = Client::token(
            key,
            config.key_id,
            config.team_id,
            ClientConfig::new(endpoint),
        )
        .context("reading the APNs key (a PKCS#8 .p8 file)")?;
        Ok(Self {
            client,
            topic: config.topic,
        })
    }
}

/// a2's payload plus the `thread-id` its `APS` lacks: the room, so that iOS groups a room's
/// notifications together.
#[derive(Debug, Serialize)]
pub struct ApnsPayload<'a> {
    aps: ApsWithThread<'a>,
    /// The push's data (`roomId`, `messageId`, `type`) next to `aps`.
    #[serde(flatten)]
    data: BTreeMap<&'a str, &'a str>,
    #[serde(skip)]
    options: NotificationOptions<'a>,
    #[serde(skip)]
    device_token: &'a str,
}

#[derive(Debug, Serialize)]
struct ApsWithThread<'a> {
    #[serde(flatten)]
    aps: APS<'a>,
    #[serde(rename = "thread-id")]
    thread_id: &'a str,
}

impl PayloadLike for ApnsPayload<'_> {
    fn get_device_token(&self) -> &str {
        self.device_token
    }

    fn get_options(&self) -> &NotificationOptions<'_> {
        &self.options
    }
}

impl<'a> ApnsPayload<'a> {
    /// The alert for `push` to the app `topic`, collapsing (and threading) by room.
    pub fn new(push: &'a Push, topic: &'a str) -> Self {
        let options = NotificationOptions {
            apns_topic: Some(topic),
            apns_push_type: Some(PushType::Alert),
            // Room ids are UUIDs, well under the 64 bytes allowed.
            apns_collapse_id: CollapseId::new(&push.room_id).ok(),
            ..Default::default()
        };
        let built = DefaultNotificationBuilder::new()
            .set_title(&push.title)
            .set_body(&push.body)
            .set_sound("default")
            .build(&push.token, options);
        Self {
            aps: ApsWithThread {
                aps: built.aps,
                thread_id: &push.room_id,
            },
            data: push
                .data
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            options: built.options,
            device_token: &push.token,
        }
    }
}

#[async_trait]
impl PushSender for ApnsSender {
    async fn send(&self, push: &Push) -> SendOutcome {
        match self.client.send(ApnsPayload::new(push, &self.topic)).await {
            Ok(_) => SendOutcome::Sent,
            Err(e) => classify(&e),
        }
    }
}

/// What an a2 error means: `Unregistered` (410) and `BadDeviceToken` an invalid token; 429, 5xx,
/// connection trouble and timeouts worth retrying; anything else a permanent failure.
pub fn classify(error: &a2::Error) -> SendOutcome {
    match error {
        a2::Error::ResponseError(response) => {
            let reason = response.error.as_ref().map(|e| &e.reason);
            if response.code == 410
                || matches!(
                    reason,
                    Some(ErrorReason::Unregistered | ErrorReason::BadDeviceToken)
                )
            {
                SendOutcome::InvalidToken
            } else if response.code == 429 || response.code >= 500 {
                SendOutcome::Retry { after: None }
            } else {
                SendOutcome::Failed(format!("APNs {}: {:?}", response.code, reason))
            }
        }
        a2::Error::ConnectionError(_)
        | a2::Error::ClientError(_)
        | a2::Error::RequestTimeout(_) => SendOutcome::Retry { after: None },
        other => SendOutcome::Failed(format!("APNs: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use a2::{ErrorBody, Response};
    use serde_json::{Value, json};

    use super::*;
    use crate::push::Platform;

    fn push() -> Push {
        Push {
            token: "a1b2c3".into(),
            platform: Platform::Apns,
            room_id: "6f1c2d3e-0000-4000-8000-000000000001".into(),
            title: "New message in Night owls".into(),
            body: "anyone up?".into(),
            data: BTreeMap::from([
                (
                    "roomId".to_owned(),
                    "6f1c2d3e-0000-4000-8000-000000000001".to_owned(),
                ),
                ("messageId".to_owned(), "17".to_owned()),
                ("type".to_owned(), "message".to_owned()),
            ]),
        }
    }

    #[test]
    fn payload_json_is_what_apns_expects() {
        let push = push();
        let payload = ApnsPayload::new(&push, "org.bubble.app");
        let json: Value = serde_json::from_str(&payload.to_json_string().unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "aps": {
                    "alert": { "title": "New message in Night owls", "body": "anyone up?" },
                    "sound": "default",
                    "mutable-content": 0,
                    "thread-id": "6f1c2d3e-0000-4000-8000-000000000001",
                },
                "roomId": "6f1c2d3e-0000-4000-8000-000000000001",
                "messageId": "17",
                "type": "message",
            })
        );
        assert_eq!(payload.get_device_token(), "a1b2c3");
        let options = payload.get_options();
        assert_eq!(options.apns_topic, Some("org.bubble.app"));
        assert_eq!(
            options.apns_collapse_id.as_ref().map(|c| c.value),
            Some("6f1c2d3e-0000-4000-8000-000000000001")
        );
        assert_eq!(options.apns_push_type, Some(PushType::Alert));
    }

    fn response(code: u16, reason: Option<ErrorReason>) -> a2::Error {
        a2::Error::ResponseError(Response {
            error: reason.map(|reason| ErrorBody {
                reason,
                timestamp: None,
            }),
            apns_id: None,
            code,
        })
    }

    #[test]
    fn outcome_of_apns_errors() {
        let invalid = [
            response(410, Some(ErrorReason::Unregistered)),
            response(400, Some(ErrorReason::BadDeviceToken)),
            response(410, None),
        ];
        for e in &invalid {
            assert_eq!(classify(e), SendOutcome::InvalidToken, "{e:?}");
        }
        let retry = [
            response(429, Some(ErrorReason::TooManyRequests)),
            response(500, Some(ErrorReason::InternalServerError)),
            response(503, Some(ErrorReason::ServiceUnavailable)),
            a2::Error::RequestTimeout(20),
        ];
        for e in &retry {
            assert_eq!(classify(e), SendOutcome::Retry { after: None }, "{e:?}");
        }
        let failed = [
            response(400, Some(ErrorReason::BadTopic)),
            response(403, Some(ErrorReason::InvalidProviderToken)),
            response(413, Some(ErrorReason::PayloadTooLarge)),
        ];
        for e in &failed {
            assert!(matches!(classify(e), SendOutcome::Failed(_)), "{e:?}");
        }
    }
}
