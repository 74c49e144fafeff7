//! Prometheus metrics. Labels are routes (templates, never raw paths), methods, statuses and
//! outcome codes: nothing personal.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

/// The server's metrics, in their own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route, method and status.
    pub requests: IntCounterVec,
    /// Request latency by route and status.
    pub latency: HistogramVec,
    /// Time of one engine call (one language of one request).
    pub inference_seconds: Histogram,
    /// Caption requests in the inference queue (running or waiting).
    pub queue_depth: IntGauge,
    /// Queue capacity.
    pub queue_capacity: IntGauge,
    /// Model load time.
    pub model_load_seconds: Gauge,
    /// Images by outcome (`captioned` or an error code).
    pub images: IntCounterVec,
    /// Requests refused by the rate limiter.
    pub rate_limited: IntCounter,
    /// Requests refused because the queue was full.
    pub busy: IntCounter,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("takarir".into()), None).expect("valid prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and status",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route", "status"],
        )
        .expect("valid metric");
        let inference_seconds = Histogram::with_opts(
            HistogramOpts::new("inference_duration_seconds", "Engine time per caption call")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new(
            "inference_queue_depth",
            "Caption requests in the inference queue",
        )
        .expect("valid metric");
        let queue_capacity = IntGauge::new("inference_queue_capacity", "Inference queue capacity")
            .expect("valid metric");
        let model_load_seconds =
            Gauge::new("model_load_seconds", "Time to load the model").expect("valid metric");
        let images =
            IntCounterVec::new(Opts::new("images_total", "Images by outcome"), &["outcome"])
                .expect("valid metric");
        let rate_limited = IntCounter::new("rate_limited_total", "Requests refused by rate limit")
            .expect("valid metric");
        let busy = IntCounter::new("busy_total", "Requests refused with a full queue")
            .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(inference_seconds.clone()),
            Box::new(queue_depth.clone()),
            Box::new(queue_capacity.clone()),
            Box::new(model_load_seconds.clone()),
            Box::new(images.clone()),
            Box::new(rate_limited.clone()),
            Box::new(busy.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            latency,
            inference_seconds,
            queue_depth,
            queue_capacity,
            model_load_seconds,
            images,
            rate_limited,
            busy,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
