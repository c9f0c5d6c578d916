//! The query of `POST /colorize` (strict: unknown parameters are refused) and the output format
//! negotiated from `Accept`.

use super::super::problem::Problem;
use crate::config::OutputFormat;

/// Query parameters of `POST /colorize`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ColorizeQuery {
    /// Decoding temperature, 0 < T <= 1: lower is more vivid (T -> 0 is the mode), 1 is the
    /// mean (safe, duller). Default: the model's own, else 0.38. Ignored by models that output ab.
    #[param(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 1.0)]
    temperature: Option<f32>,
    /// Output format; default from `Accept`, else png. WebP is lossless.
    #[param(value_type = Option<OutputFormat>)]
    format: Option<String>,
    /// JPEG quality 1..100 (default 90).
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
    /// Model to use, one of the loaded models (`/info`); default: the service's default model.
    model: Option<String>,
}

const QUERY_KEYS: [&str; 4] = ["temperature", "format", "quality", "model"];

/// A query as parsed.
pub(crate) struct Parsed {
    pub(crate) temperature: Option<f32>,
    pub(crate) format: Option<OutputFormat>,
    pub(crate) quality: u8,
    pub(crate) model: Option<String>,
}

pub(crate) fn parse_query(raw: Option<&str>) -> Result<Parsed, Problem> {
    let mut p = Parsed { temperature: None, format: None, quality: 90, model: None };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| Problem::invalid_parameter(format!("malformed query string: {e}")))?;
    for (k, v) in pairs {
        match k.as_str() {
            "temperature" => {
                let bad = || Problem::invalid_parameter(format!("temperature must be a number in (0, 1], got {v:?}"));
                let t: f64 = v.trim().parse().map_err(|_| bad())?;
                if !crate::color::temperature_in_range(t) {
                    return Err(bad());
                }
                // Below f32's smallest normal value, T is the mode all the same.
                p.temperature = Some((t as f32).max(f32::MIN_POSITIVE));
            }
            "format" => {
                p.format = Some(OutputFormat::from_name(&v).ok_or_else(|| {
                    Problem::invalid_parameter(format!("format must be png, jpeg or webp, got {v:?}"))
                        .with_allowed(OutputFormat::ALL.iter().map(|f| f.name().to_string()).collect())
                })?);
            }
            "quality" => {
                p.quality = v
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| Problem::invalid_parameter(format!("quality must be an integer in 1..100, got {v:?}")))?;
            }
            "model" => p.model = Some(v),
            other => {
                return Err(Problem::invalid_parameter(format!("unknown query parameter {other:?}"))
                    .with_allowed(QUERY_KEYS.iter().map(|s| s.to_string()).collect()));
            }
        }
    }
    Ok(p)
}

/// The output format the `Accept` header prefers among png, jpeg and webp (q-values honoured);
/// None when it names none of them.
pub(crate) fn negotiate(accept: Option<&str>) -> Option<OutputFormat> {
    let accept = accept?;
    let mut best: Option<(f32, usize, OutputFormat)> = None;
    for (i, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let fmt = match media.as_str() {
            "image/png" => OutputFormat::Png,
            "image/jpeg" | "image/jpg" => OutputFormat::Jpeg,
            "image/webp" => OutputFormat::Webp,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
            best = Some((q, i, fmt));
        }
    }
    best.map(|b| b.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_honours_q_values() {
        assert_eq!(negotiate(Some("image/webp")), Some(OutputFormat::Webp));
        assert_eq!(negotiate(Some("image/png;q=0.5, image/jpeg")), Some(OutputFormat::Jpeg));
        assert_eq!(negotiate(Some("image/jpeg;q=0, image/webp;q=0.1")), Some(OutputFormat::Webp));
        assert_eq!(negotiate(Some("*/*")), None);
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn query_is_strict() {
        assert!(parse_query(Some("temperature=0.5&format=jpeg&quality=80")).is_ok());
        // Any T in (0, 1] is taken; the tiniest are the mode.
        let t = parse_query(Some("temperature=1e-300")).ok().unwrap().temperature.unwrap();
        assert!(t > 0.0 && (1.0 / t).is_finite());
        for bad in [
            "temperature=0",
            "temperature=1.5",
            "temperature=NaN",
            "temperature=-1",
            "temperature=abc",
            "temperature=1e-400",
            "temperature=1.0000001",
            "format=gif",
            "format=PNG",
            "format=jpg",
            "quality=0",
            "quality=101",
            "temprature=0.5",
        ] {
            let p = parse_query(Some(bad)).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(p.status, 422, "{bad}");
        }
    }
}
