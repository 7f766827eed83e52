//! What `template.yaml` creates, created in a local emulator: the FIFO queue
//! with its FIFO dead-letter queue and redrive policy, the four secrets
//! (webhook API key, Okta, Slack, Slack signing secret) and the store table.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;

/// Clients for an emulator (moto) at `endpoint`, with dummy credentials.
#[derive(Clone, Debug)]
pub struct LocalAws {
    pub endpoint: String,
    pub region: String,
    pub config: SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

impl LocalAws {
    pub async fn connect(endpoint: &str) -> LocalAws {
        let region = "us-east-1";
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(region))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "local"))
            .http_client(shared::aws::http_client())
            .load()
            .await;
        LocalAws {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            sqs: aws_sdk_sqs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            config,
        }
    }

    /// The standard AWS environment that points a function process at the emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

/// How to create the queues; the defaults mirror `template.yaml`.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    /// Queue names are `<prefix>-events.fifo` and `<prefix>-dlq.fifo`.
    pub prefix: String,
    pub max_receive_count: u32,
    pub visibility_timeout: Duration,
    pub max_message_bytes: u32,
}

impl QueueSpec {
    pub fn new(prefix: &str) -> Self {
        QueueSpec {
            prefix: prefix.to_string(),
            max_receive_count: 5,
            visibility_timeout: Duration::from_secs(30),
            max_message_bytes: 1_048_576,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Queues {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

pub async fn create_queues(aws: &LocalAws, spec: &QueueSpec) -> anyhow::Result<Queues> {
    let dlq_url = aws
        .sqs
        .create_queue()
        .queue_name(format!("{}-dlq.fifo", spec.prefix))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(aws, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receive_count,
    });
    let queue_url = aws
        .sqs
        .create_queue()
        .queue_name(format!("{}-events.fifo", spec.prefix))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            spec.visibility_timeout.as_secs().to_string(),
        )
        .attributes(QueueAttributeName::MessageRetentionPeriod, "345600")
        .attributes(
            QueueAttributeName::MaximumMessageSize,
            spec.max_message_bytes.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    let queue_arn = queue_arn(aws, &queue_url).await?;
    Ok(Queues {
        queue_url,
        queue_arn,
        dlq_url,
        dlq_arn,
    })
}

async fn queue_arn(aws: &LocalAws, url: &str) -> anyhow::Result<String> {
    let attrs = aws
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow::anyhow!("queue {url} has no ARN"))
}

/// Creates a secret and returns its ARN.
pub async fn create_secret(aws: &LocalAws, name: &str, value: &str) -> anyhow::Result<String> {
    let out = aws
        .secrets
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await?;
    Ok(out.arn.unwrap_or_else(|| name.to_string()))
}

/// Stores a new value: it becomes AWSCURRENT and the old one AWSPREVIOUS,
/// as in a rotation.
pub async fn rotate_secret(aws: &LocalAws, secret_id: &str, value: &str) -> anyhow::Result<()> {
    aws.secrets
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(value)
        .send()
        .await?;
    Ok(())
}

/// The Okta secret for an API token: `{"apiToken": "..."}`.
pub fn okta_api_token_secret_json(api_token: &str) -> String {
    serde_json::json!({ "apiToken": api_token }).to_string()
}

/// The Okta secret for an OAuth 2.0 service app:
/// `{"clientId": "0oa...", "privateKey": "<PKCS#8 PEM>", "keyId": "..."}`.
pub fn okta_oauth_secret_json(client_id: &str, private_key_pem: &str, key_id: &str) -> String {
    serde_json::json!({
        "clientId": client_id,
        "privateKey": private_key_pem,
        "keyId": key_id,
    })
    .to_string()
}

/// A Slack app signing secret as Slack makes them: 32 lower-case hex digits.
pub fn generate_signing_secret() -> String {
    crate::http_stub::random_hex(16)
}

/// The secrets' contents. `Debug` shows none of them.
#[derive(Clone)]
pub struct SecretValues {
    /// The webhook API key (the SecretString is the key itself).
    pub api_key: String,
    /// [`okta_api_token_secret_json`] or [`okta_oauth_secret_json`].
    pub okta_json: String,
    /// `{"webhookUrl": "..."}` or `{"botToken": "...", "channel": "..."}`
    pub slack_json: String,
    /// The Slack app's signing secret (the SecretString is the secret
    /// itself; the template creates it as `unset`, which the actions
    /// function answers with 503).
    pub signing_secret: String,
}

impl SecretValues {
    /// With an Okta API token secret and a freshly generated signing secret.
    pub fn new(api_key: &str, okta_token: &str, slack_webhook_url: &str) -> Self {
        SecretValues {
            api_key: api_key.to_string(),
            okta_json: okta_api_token_secret_json(okta_token),
            slack_json: serde_json::json!({ "webhookUrl": slack_webhook_url }).to_string(),
            signing_secret: generate_signing_secret(),
        }
    }

    /// Replaces the Okta secret (e.g. with [`okta_oauth_secret_json`]).
    pub fn with_okta_json(mut self, okta_json: String) -> Self {
        self.okta_json = okta_json;
        self
    }

    /// Replaces the signing secret.
    pub fn with_signing_secret(mut self, signing_secret: &str) -> Self {
        self.signing_secret = signing_secret.to_string();
        self
    }
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValues").finish_non_exhaustive()
    }
}

/// Everything the template creates, by id.
#[derive(Clone, Debug)]
pub struct Stack {
    pub queues: Queues,
    pub api_key_secret_id: String,
    pub okta_secret_id: String,
    pub slack_secret_id: String,
    /// `<prefix>/slack-signing-secret`: the actions function's `SLACK_SIGNING_SECRET_ID`.
    pub signing_secret_id: String,
    /// `<prefix>-store`: the DynamoDB table of held events and decisions (`STORE_TABLE`).
    pub store_table: String,
}

/// Creates the store table as the template does ([`shared::store::create_table`]).
pub async fn create_store_table(aws: &LocalAws, table: &str) -> anyhow::Result<()> {
    shared::store::create_table(&aws.dynamodb, table)
        .await
        .map_err(anyhow::Error::from)
}

pub async fn create_stack(
    aws: &LocalAws,
    spec: &QueueSpec,
    secrets: &SecretValues,
) -> anyhow::Result<Stack> {
    let queues = create_queues(aws, spec).await?;
    let prefix = &spec.prefix;
    Ok(Stack {
        queues,
        api_key_secret_id: create_secret(
            aws,
            &format!("{prefix}/webhook-api-key"),
            &secrets.api_key,
        )
        .await?,
        okta_secret_id: create_secret(aws, &format!("{prefix}/okta"), &secrets.okta_json).await?,
        slack_secret_id: create_secret(aws, &format!("{prefix}/slack"), &secrets.slack_json)
            .await?,
        signing_secret_id: create_secret(
            aws,
            &format!("{prefix}/slack-signing-secret"),
            &secrets.signing_secret,
        )
        .await?,
        store_table: {
            let table = format!("{prefix}-store");
            create_store_table(aws, &table).await?;
            table
        },
    })
}
