//! The colour core against reference values computed elsewhere: the 313 bin centres of
//! `pts_in_hull.npy`, the Python decoder of the training pipeline, and the committed OpenAPI file.

use colorizer::color::{annealed_mean, PTS_IN_HULL};

#[test]
fn embedded_bins_match_pts_in_hull_npy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("training/resources/pts_in_hull.npy");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[313, 2]);
    let vals: Vec<i64> = npy.into_vec().unwrap();
    for (i, c) in PTS_IN_HULL.iter().enumerate() {
        assert_eq!([c[0] as i64, c[1] as i64], [vals[2 * i], vals[2 * i + 1]], "bin {i}");
    }
    assert_eq!(PTS_IN_HULL[120], [0.0, 0.0]);
}

#[test]
fn rust_decoder_matches_the_python_decoder() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/decode_reference.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let t = case["temperature"].as_f64().unwrap() as f32;
        let (h, w) = (case["height"].as_u64().unwrap() as usize, case["width"].as_u64().unwrap() as usize);
        let logits: Vec<f32> = case["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let want: Vec<f32> = case["ab"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let ab = annealed_mean(&logits, h, w, t);
        let got: Vec<f32> = ab.a.iter().chain(ab.b.iter()).copied().collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!((g - e).abs() < 1e-3, "T={t} value {i}: rust {g} vs python {e}");
        }
    }
}

#[test]
fn openapi_file_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let fresh = colorizer::http::openapi::spec_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == fresh,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test --test api reference::openapi` and commit it"
    );
}
