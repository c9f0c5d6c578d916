//! The query of `POST /colorize` (strict: unknown parameters are refused) and the output format
//! negotiated from `Accept`.

use super::super::problem::Problem;
use crate::params::{JpegQuality, OutputFormat, Temperature};

/// Query parameters of `POST /colorize`: what the OpenAPI document lists and what a query is
/// parsed into.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ColorizeQuery {
    /// Decoding temperature, 0 < T <= 1: lower is more vivid (T -> 0 is the mode), 1 is the
    /// mean (safe, duller). Default: the model's own, else 0.38. Ignored by models that output ab.
    #[param(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 1.0)]
    pub(crate) temperature: Option<Temperature>,
    /// Output format; default from `Accept`, else png. WebP is lossless.
    #[param(value_type = Option<OutputFormat>)]
    pub(crate) format: Option<OutputFormat>,
    /// JPEG quality 1..100 (default 90).
    #[param(value_type = Option<u8>, minimum = 1, maximum = 100)]
    pub(crate) quality: Option<JpegQuality>,
    /// Model to use, one of the loaded models (`/info`); default: the service's default model.
    pub(crate) model: Option<String>,
}

/// The names of the query parameters: the fields of [`ColorizeQuery`].
fn query_keys() -> Vec<String> {
    use utoipa::IntoParams;
    ColorizeQuery::into_params(|| None).into_iter().map(|p| p.name).collect()
}

/// The query, strictly: a value out of range or an unknown parameter is a 422 that says which.
pub(crate) fn parse_query(raw: Option<&str>) -> Result<ColorizeQuery, Problem> {
    let mut q = ColorizeQuery::default();
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| Problem::invalid_parameter(format!("malformed query string: {e}")))?;
    for (k, v) in pairs {
        match k.as_str() {
            "temperature" => q.temperature = Some(v.parse().map_err(Problem::invalid_parameter)?),
            "format" => {
                let names = || OutputFormat::ALL.iter().map(|f| f.name().to_string()).collect();
                q.format = Some(v.parse().map_err(|e| Problem::invalid_parameter(e).with_allowed(names()))?);
            }
            "quality" => q.quality = Some(v.parse().map_err(Problem::invalid_parameter)?),
            "model" => q.model = Some(v),
            other => {
                return Err(Problem::invalid_parameter(format!("unknown query parameter {other:?}")).with_allowed(query_keys()));
            }
        }
    }
    Ok(q)
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
        let Some(fmt) = OutputFormat::from_mime(&media) else { continue };
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
        let t = parse_query(Some("temperature=1e-300")).ok().unwrap().temperature.unwrap().get();
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
        let unknown = parse_query(Some("temprature=0.5")).err().unwrap();
        assert_eq!(unknown.allowed.as_deref().unwrap(), ["temperature", "format", "quality", "model"]);
    }
}
