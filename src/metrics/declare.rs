//! How a metric is declared: a field whose doc comment is its HELP text, so a
//! metric's name, help, type and labels are read in one place, and the
//! constructor is generated rather than written out family by family.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};

/// Latency buckets from half a millisecond (a local confirm) to Enate's patience.
/// Every histogram of the bridge is a latency, so every histogram uses them,
/// but for the stages of a request ([`StageHistogramVec`]).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets for the stages of a request, most of which take microseconds:
/// from 10 µs up, so a stage's p99 can be told apart below a millisecond,
/// to the confirm timeout's order.
pub const STAGE_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0, 5.0,
];

/// A latency family with [`STAGE_BUCKETS`]: its own type, so the declaration
/// says which buckets a family has.
#[derive(Clone)]
pub struct StageHistogramVec(pub HistogramVec);

impl Collector for StageHistogramVec {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

impl Declare for StageHistogramVec {
    fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self> {
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(STAGE_BUCKETS.to_vec()),
            labels,
        )
        .map(Self)
    }
}

/// A metric family that can be made from its name, HELP text and label names.
pub trait Declare: Collector + Clone + Sized + 'static {
    fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self>;
}

/// Implements [`Declare`] for unlabelled metrics (`new(name, help)`) and for
/// labelled families (`new(opts, labels)`).
macro_rules! declare_by {
    (plain $($kind:ty),*) => {$(
        impl Declare for $kind {
            fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self> {
                debug_assert!(labels.is_empty(), "{name} takes no labels");
                <$kind>::new(name, help)
            }
        }
    )*};
    (labelled $($kind:ty),*) => {$(
        impl Declare for $kind {
            fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self> {
                <$kind>::new(Opts::new(name, help), labels)
            }
        }
    )*};
}

declare_by!(plain IntCounter, IntGauge, Gauge);
declare_by!(labelled IntCounterVec, IntGaugeVec, GaugeVec);

impl Declare for Histogram {
    fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self> {
        debug_assert!(labels.is_empty(), "{name} takes no labels");
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
    }
}

impl Declare for HistogramVec {
    fn declare(name: &str, help: String, labels: &[&str]) -> prometheus::Result<Self> {
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        )
    }
}

/// Makes a family and registers it. The names and labels are written in the
/// source, so a failure is a programming error found by the first test.
pub fn register<M: Declare>(registry: &Registry, name: &str, help: String, labels: &[&str]) -> M {
    let metric = M::declare(name, help, labels).expect("metric names and labels are valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

/// The HELP text from a doc comment's lines: each `///` line arrives as its own
/// string with its leading space, so the lines are trimmed and joined by one space.
pub fn help(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Declares a struct of metric families. Each field reads
/// `/// HELP text` then `name: Type = "metric_name" ["label", ...],`; the
/// generated `register(&Registry)` makes and registers every one.
macro_rules! declare_metrics {
    (
        $(#[doc = $doc:literal])*
        struct $name:ident {
            $(
                $(#[doc = $help:literal])+
                $field:ident: $kind:ty = $metric:literal $([$($label:literal),* $(,)?])?,
            )*
        }
    ) => {
        $(#[doc = $doc])*
        struct $name {
            $(
                #[doc = concat!("`", $metric, "`:")]
                $(#[doc = $help])+
                $field: $kind,
            )*
        }

        impl $name {
            fn register(registry: &prometheus::Registry) -> Self {
                Self {
                    $(
                        $field: $crate::metrics::declare::register(
                            registry,
                            $metric,
                            $crate::metrics::declare::help(&[$($help),+]),
                            &[$($($label),*)?],
                        ),
                    )*
                }
            }
        }
    };
}

pub(crate) use declare_metrics;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_joins_the_doc_lines_with_one_space() {
        assert_eq!(
            help(&[" Events in the spool,", " waiting for RabbitMQ."]),
            "Events in the spool, waiting for RabbitMQ."
        );
    }
}
