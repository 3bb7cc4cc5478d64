//! Decoding the HdrHistograms embedded in results files (V2 serialization, base64).

use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::model::{Entry, Histograms};

/// A decoded histogram and the factor that turns its values into microseconds.
pub struct Decoded {
    pub histogram: Histogram<u64>,
    pub to_us: f64,
}

fn unit_to_us(unit: &str) -> anyhow::Result<f64> {
    Ok(match unit {
        "ns" => 1e-3,
        "us" => 1.0,
        "ms" => 1e3,
        other => bail!("unknown histogram unit {other:?} (expected ns or us)"),
    })
}

/// Decodes one base64 V2 histogram.
pub fn decode(encoded: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .context("histogram is not valid base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|err| anyhow::anyhow!("histogram does not decode: {err:?}"))
}

/// The latency histogram of one repetition.
pub fn latency(histograms: &Histograms) -> anyhow::Result<Decoded> {
    Ok(Decoded {
        histogram: decode(&histograms.latency)?,
        to_us: unit_to_us(&histograms.unit)?,
    })
}

/// The latency histograms of every repetition of `entry`, merged (exact combined
/// percentiles). Errors when any repetition lacks one or it does not decode.
pub fn merged_latency(entry: &Entry) -> anyhow::Result<Decoded> {
    let mut merged: Option<Decoded> = None;
    for rep in &entry.repetitions {
        let histograms = rep
            .histograms
            .as_ref()
            .with_context(|| format!("repetition {} has no histograms", rep.index))?;
        let decoded = latency(histograms)
            .with_context(|| format!("repetition {} latency histogram", rep.index))?;
        match merged.as_mut() {
            None => merged = Some(decoded),
            Some(acc) => {
                if (acc.to_us - decoded.to_us).abs() > f64::EPSILON {
                    bail!("repetitions use different histogram units");
                }
                acc.histogram
                    .add(&decoded.histogram)
                    .map_err(|err| anyhow::anyhow!("merging histograms: {err:?}"))?;
            }
        }
    }
    merged.context("no repetitions")
}
