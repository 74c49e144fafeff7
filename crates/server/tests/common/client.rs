//! Shorthands for test requests, shared by the server's and the CLI's suites: send and
//! unwrap, and read the body as JSON, text or bytes.

use std::future::Future;

use reqwest::{RequestBuilder, Response};
use serde_json::Value;

/// Sending a request in a test, where a transport error is a failure.
pub trait Go {
    /// Sends; the response.
    fn go(self) -> impl Future<Output = Response> + Send;
    /// Sends; the body as JSON.
    fn fetch_json(self) -> impl Future<Output = Value> + Send;
    /// Sends; the body as text.
    fn fetch_text(self) -> impl Future<Output = String> + Send;
    /// Sends; the body.
    fn fetch_bytes(self) -> impl Future<Output = Vec<u8>> + Send;
}

impl Go for RequestBuilder {
    async fn go(self) -> Response {
        self.send().await.unwrap()
    }

    async fn fetch_json(self) -> Value {
        self.go().await.json().await.unwrap()
    }

    async fn fetch_text(self) -> String {
        self.go().await.text().await.unwrap()
    }

    async fn fetch_bytes(self) -> Vec<u8> {
        self.go().await.bytes().await.unwrap().to_vec()
    }
}
