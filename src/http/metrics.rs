//! Prometheus metrics of the service (the names the dashboards, the alerts and the deploy checks use).

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

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("colorizer_http_requests_total", "HTTP requests answered, by route and status"),
            &["route", "status"],
        )
        .unwrap();
        let images =
            IntCounterVec::new(Opts::new("colorizer_images_total", "Images colorized, by model and output format"), &["model", "format"])
                .unwrap();
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("colorizer_http_request_duration_seconds", "Time from request to response, by route")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .unwrap();
        let queue_wait_seconds = HistogramVec::new(
            HistogramOpts::new("colorizer_queue_wait_seconds", "Time a request waited for a free session").buckets(STAGE_BUCKETS.to_vec()),
            &["model"],
        )
        .unwrap();
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "colorizer_stage_seconds",
                "Time of each pipeline stage (decode, resize, infer, bin_decode, upsample, encode)",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage", "model"],
        )
        .unwrap();
        let input_megapixels = Histogram::with_opts(
            HistogramOpts::new("colorizer_input_megapixels", "Size of the input images in megapixels").buckets(MEGAPIXEL_BUCKETS.to_vec()),
        )
        .unwrap();
        let in_flight = IntGauge::new("colorizer_in_flight_requests", "Requests being served now").unwrap();
        let queue_depth = GaugeVec::new(Opts::new("colorizer_queue_depth", "Requests waiting for a session"), &["model"]).unwrap();
        let pool_size = GaugeVec::new(Opts::new("colorizer_pool_size", "ONNX Runtime sessions per model"), &["model"]).unwrap();
        let rejected = IntCounterVec::new(
            Opts::new(
                "colorizer_rejected_total",
                "Requests refused before inference, by reason (overloaded, memory, deadline, unauthorized)",
            ),
            &["reason"],
        )
        .unwrap();
        let model_info = GaugeVec::new(
            Opts::new("colorizer_model_info", "Loaded models (value 1), with their sha256 and output kind"),
            &["model", "sha256", "output"],
        )
        .unwrap();
        let ready = Gauge::new("colorizer_ready", "1 when the models are loaded and warmed up and the service is not draining").unwrap();
        let memory_budget =
            IntGauge::new("colorizer_memory_budget_bytes", "Memory that requests may hold at once (--memory-budget)").unwrap();
        let memory_reserved = IntGauge::new(
            "colorizer_memory_reserved_bytes",
            "Memory reserved now by requests (estimated from their image headers; bodies while read)",
        )
        .unwrap();
        let open_connections =
            IntGauge::new("colorizer_open_connections", "Client connections open now (at most --max-connections)").unwrap();
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(images.clone()),
            Box::new(request_seconds.clone()),
            Box::new(queue_wait_seconds.clone()),
            Box::new(stage_seconds.clone()),
            Box::new(input_megapixels.clone()),
            Box::new(in_flight.clone()),
            Box::new(queue_depth.clone()),
            Box::new(pool_size.clone()),
            Box::new(rejected.clone()),
            Box::new(model_info.clone()),
            Box::new(ready.clone()),
            Box::new(memory_budget.clone()),
            Box::new(memory_reserved.clone()),
            Box::new(open_connections.clone()),
        ] {
            registry.register(c).unwrap();
        }
        for reason in ["overloaded", "memory", "deadline", "unauthorized"] {
            rejected.with_label_values(&[reason]);
        }
        Self {
            registry,
            requests,
            images,
            request_seconds,
            queue_wait_seconds,
            stage_seconds,
            input_megapixels,
            in_flight,
            queue_depth,
            pool_size,
            rejected,
            model_info,
            ready,
            memory_budget,
            memory_reserved,
            open_connections,
        }
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
