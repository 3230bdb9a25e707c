//! A SigV4-signed POST to an AWS endpoint, for the few calls of services whose SDK crates
//! would cost more build time than the calls are worth (EC2's Query API, CloudWatch Logs'
//! JSON API): credentials and region from the SDK configuration, `aws.endpoint` honoured.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::error::{Error, Result};

pub struct Signed {
    http: reqwest::Client,
    pub endpoint: String,
    region: String,
    service: &'static str,
    identity: Identity,
}

impl Signed {
    /// `service` is the signing name (`ec2`, `logs`); `env_var` the per-service endpoint
    /// override (`AWS_ENDPOINT_URL_EC2`), `host` its default host prefix.
    pub async fn new(config: &SdkConfig, service: &'static str, env_var: &str) -> Result<Self> {
        let region = config
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = std::env::var(env_var)
            .ok()
            .or_else(|| config.endpoint_url().map(str::to_string))
            .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
        let provider = config
            .credentials_provider()
            .ok_or_else(|| Error::Credentials {
                what: format!("cannot call {service}"),
                detail: "no credentials provider in the SDK configuration".into(),
            })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| super::error("load AWS credentials", service, e))?;
        Ok(Signed {
            http: reqwest::Client::new(),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            service,
            identity: credentials.into(),
        })
    }

    /// POSTs `body` to the endpoint's root; the status and the answer's text.
    pub async fn post(
        &self,
        headers: &[(&str, &str)],
        body: String,
    ) -> std::result::Result<(reqwest::StatusCode, String), String> {
        let url = format!("{}/", self.endpoint);
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut req = self.http.post(&url).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    /// A JSON-protocol call (`X-Amz-Target: TARGET`, `application/x-amz-json-VERSION`): the
    /// status and the answer as JSON (Null when it is not JSON).
    pub async fn json(
        &self,
        version: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<(reqwest::StatusCode, serde_json::Value), String> {
        let content_type = format!("application/x-amz-json-{version}");
        let (status, text) = self
            .post(
                &[("content-type", &content_type), ("x-amz-target", target)],
                body.to_string(),
            )
            .await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// A Query-protocol call (EC2, IAM): `Action`, `Version` and `params` as a form; the
    /// answer's document, or the error the service answered as "STATUS: Code Message".
    pub async fn query(
        &self,
        action: &str,
        version: &str,
        params: &[(String, String)],
    ) -> std::result::Result<super::ec2::Node, String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", version);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let (status, text) = self
            .post(
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                form.finish(),
            )
            .await?;
        let doc = super::ec2::parse(&text).map_err(|e| format!("unreadable answer ({e})"))?;
        if !status.is_success() {
            // EC2 answers <Response><Errors><Error>, IAM <ErrorResponse><Error>.
            let error = ["Errors/Error", "Error"]
                .iter()
                .find(|p| !doc.text_at(&format!("{p}/Code")).is_empty())
                .unwrap_or(&"Error");
            return Err(format!(
                "{status}: {} {}",
                doc.text_at(&format!("{error}/Code")),
                doc.text_at(&format!("{error}/Message"))
            ));
        }
        Ok(doc)
    }
}
