//! The values a request or the command line sets, each checked once, where it is made: a
//! [`Temperature`] is in (0, 1], a [`JpegQuality`] in 1..=100, an [`OutputFormat`] one of the
//! formats the API names. The HTTP query, the CLI flags and the model metadata all parse them
//! with `FromStr`, so each range and each error message has one home.

use std::fmt;
use std::str::FromStr;

/// A decoding temperature of the annealed mean, 0 < T <= 1: lower is more vivid (T -> 0 is the
/// mode), 1 is the plain mean.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
#[serde(transparent)]
pub struct Temperature(f32);

impl Temperature {
    /// Zhang et al.'s temperature, used when neither the request nor the model gives one.
    pub const DEFAULT: Self = Self(crate::color::DEFAULT_TEMPERATURE);

    /// The temperature `t`, if it is in (0, 1].
    pub fn new(t: f64) -> Option<Self> {
        // Below f32's smallest normal value, T is the mode all the same.
        crate::color::temperature_in_range(t).then(|| Self((t as f32).max(f32::MIN_POSITIVE)))
    }

    pub fn get(self) -> f32 {
        self.0
    }
}

impl FromStr for Temperature {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        v.trim().parse::<f64>().ok().and_then(Self::new).ok_or_else(|| format!("temperature must be a number in (0, 1], got {v:?}"))
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// JPEG quality, 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegQuality(u8);

impl JpegQuality {
    /// Used when a request or the command line gives none.
    pub const DEFAULT: Self = Self(90);

    /// The quality `q`, if it is in 1..=100.
    pub fn new(q: u8) -> Option<Self> {
        (1..=100).contains(&q).then_some(Self(q))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl FromStr for JpegQuality {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        v.trim().parse::<u8>().ok().and_then(Self::new).ok_or_else(|| format!("quality must be an integer in 1..100, got {v:?}"))
    }
}

impl fmt::Display for JpegQuality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// An output format: its API name, media type and file extension. (A plain comment: a doc
// comment would become the schema's description in the OpenAPI document.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Png,
    Jpeg,
    Webp,
}

impl OutputFormat {
    /// Every format, in the order the API lists them.
    pub const ALL: [Self; 3] = [Self::Png, Self::Jpeg, Self::Webp];

    /// The media type of the format's files.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// The name the API, the metrics and the CLI use (`png`, `jpeg`, `webp`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    /// The file name extension of the format's files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }

    /// Whether the format keeps every pixel (PNG, and WebP as the service writes it).
    pub fn lossless(self) -> bool {
        self != Self::Jpeg
    }

    /// The format of an API name, exactly as `name` spells it (`png`, `jpeg`, `webp`).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The format of a media type (lowercase; `image/jpg` is taken for `image/jpeg`).
    pub fn from_mime(media: &str) -> Option<Self> {
        let media = if media == "image/jpg" { "image/jpeg" } else { media };
        Self::ALL.into_iter().find(|f| f.mime() == media)
    }

    /// "png, jpeg or webp".
    pub fn names_listed() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
        let (last, rest) = names.split_last().expect("formats");
        format!("{} or {last}", rest.join(", "))
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        Self::from_name(v).ok_or_else(|| format!("format must be {}, got {v:?}", Self::names_listed()))
    }
}

/// `--format` takes the API's names.
impl clap::ValueEnum for OutputFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_are_in_zero_one() {
        assert_eq!("0.5".parse::<Temperature>().map(Temperature::get), Ok(0.5));
        assert_eq!(" 1 ".parse::<Temperature>().map(Temperature::get), Ok(1.0));
        // Any T in (0, 1] is taken; the tiniest are the mode.
        let t = "1e-300".parse::<Temperature>().unwrap().get();
        assert!(t > 0.0 && (1.0 / t).is_finite());
        for bad in ["0", "1.5", "NaN", "inf", "-1", "abc", "1e-400", "1.0000001", ""] {
            let e = bad.parse::<Temperature>().unwrap_err();
            assert!(e.starts_with("temperature must be a number in (0, 1]"), "{bad}: {e}");
        }
        assert_eq!(Temperature::DEFAULT.to_string(), "0.38");
    }

    #[test]
    fn jpeg_quality_is_one_to_a_hundred() {
        assert_eq!("1".parse::<JpegQuality>().map(JpegQuality::get), Ok(1));
        assert_eq!("100".parse::<JpegQuality>().map(JpegQuality::get), Ok(100));
        for bad in ["0", "101", "256", "-1", "9.5", ""] {
            assert!(bad.parse::<JpegQuality>().is_err(), "{bad}");
        }
        assert_eq!(JpegQuality::DEFAULT.get(), 90);
    }

    #[test]
    fn formats_have_one_name_everywhere() {
        for f in OutputFormat::ALL {
            assert_eq!(OutputFormat::from_name(f.name()), Some(f));
            assert_eq!(f.name().parse::<OutputFormat>(), Ok(f));
            assert_eq!(OutputFormat::from_mime(f.mime()), Some(f));
            assert_eq!(f.lossless(), f != OutputFormat::Jpeg);
            // The OpenAPI schema and the JSON name are serde's: the same as `name`.
            assert_eq!(serde_json::to_value(f).unwrap(), f.name());
            let value = clap::ValueEnum::to_possible_value(&f).unwrap();
            assert_eq!(value.get_name(), f.name());
        }
        assert_eq!(OutputFormat::from_mime("image/jpg"), Some(OutputFormat::Jpeg));
        for bad in ["PNG", "jpg", "gif", ""] {
            assert!(bad.parse::<OutputFormat>().is_err(), "{bad}");
        }
        assert_eq!(OutputFormat::names_listed(), "png, jpeg or webp");
    }
}
