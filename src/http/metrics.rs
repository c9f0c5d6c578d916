//! Prometheus metrics of the service (the names the dashboards, the alerts and the deploy checks use).

use prometheus::core::Collector;
use prometheus::{Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::pipeline::Timings;

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub images: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub queue_wait_seconds: HistogramVec,
    pub stage_seconds: HistogramVec,
    pub input_megapixels: Histogram,
    pub in_flight: IntGauge,
    pub queue_depth: GaugeVec,
    pub pool_size: GaugeVec,
    pub rejected: IntCounterVec,
    pub model_info: GaugeVec,
    pub ready: Gauge,
    pub memory_budget: IntGauge,
    pub memory_reserved: IntGauge,
    pub open_connections: IntGauge,
}

const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0];
const STAGE_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
const MEGAPIXEL_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 50.0];

/// Registers `metric` in `registry` and returns it (the metrics below are fixed and valid: a
/// failure here is a programming error caught by every test).
fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<M>) -> M {
    let metric = metric.expect("a valid metric");
    registry.register(Box::new(metric.clone())).expect("a metric registered once");
    metric
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(buckets.to_vec())
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let metrics = Self {
            requests: registered(
                &r,
                IntCounterVec::new(
                    Opts::new("colorizer_http_requests_total", "HTTP requests answered, by route and status"),
                    &["route", "status"],
                ),
            ),
            images: registered(
                &r,
                IntCounterVec::new(
                    Opts::new("colorizer_images_total", "Images colorized, by model and output format"),
                    &["model", "format"],
                ),
            ),
            request_seconds: registered(
                &r,
                HistogramVec::new(
                    histogram("colorizer_http_request_duration_seconds", "Time from request to response, by route", LATENCY_BUCKETS),
                    &["route"],
                ),
            ),
            queue_wait_seconds: registered(
                &r,
                HistogramVec::new(
                    histogram("colorizer_queue_wait_seconds", "Time a request waited for a free session", STAGE_BUCKETS),
                    &["model"],
                ),
            ),
            stage_seconds: registered(
                &r,
                HistogramVec::new(
                    histogram(
                        "colorizer_stage_seconds",
                        "Time of each pipeline stage (decode, resize, infer, bin_decode, upsample, encode)",
                        STAGE_BUCKETS,
                    ),
                    &["stage", "model"],
                ),
            ),
            input_megapixels: registered(
                &r,
                Histogram::with_opts(histogram("colorizer_input_megapixels", "Size of the input images in megapixels", MEGAPIXEL_BUCKETS)),
            ),
            in_flight: registered(&r, IntGauge::new("colorizer_in_flight_requests", "Requests being served now")),
            queue_depth: registered(&r, GaugeVec::new(Opts::new("colorizer_queue_depth", "Requests waiting for a session"), &["model"])),
            pool_size: registered(&r, GaugeVec::new(Opts::new("colorizer_pool_size", "ONNX Runtime sessions per model"), &["model"])),
            rejected: registered(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "colorizer_rejected_total",
                        "Requests refused before inference, by reason (overloaded, memory, deadline, unauthorized)",
                    ),
                    &["reason"],
                ),
            ),
            model_info: registered(
                &r,
                GaugeVec::new(
                    Opts::new("colorizer_model_info", "Loaded models (value 1), with their sha256 and output kind"),
                    &["model", "sha256", "output"],
                ),
            ),
            ready: registered(
                &r,
                Gauge::new("colorizer_ready", "1 when the models are loaded and warmed up and the service is not draining"),
            ),
            memory_budget: registered(
                &r,
                IntGauge::new("colorizer_memory_budget_bytes", "Memory that requests may hold at once (--memory-budget)"),
            ),
            memory_reserved: registered(
                &r,
                IntGauge::new(
                    "colorizer_memory_reserved_bytes",
                    "Memory reserved now by requests (estimated from their image headers; bodies while read)",
                ),
            ),
            open_connections: registered(
                &r,
                IntGauge::new("colorizer_open_connections", "Client connections open now (at most --max-connections)"),
            ),
            registry: r,
        };
        for reason in ["overloaded", "memory", "deadline", "unauthorized"] {
            metrics.rejected.with_label_values(&[reason]);
        }
        metrics
    }

    /// Records the stage times of one colorized image.
    pub fn observe_stages(&self, model: &str, t: &Timings) {
        for (stage, d) in t.stages() {
            if stage != "queue" {
                self.stage_seconds.with_label_values(&[stage, model]).observe(d.as_secs_f64());
            }
        }
        self.queue_wait_seconds.with_label_values(&[model]).observe(t.queue.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).expect("utf-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
