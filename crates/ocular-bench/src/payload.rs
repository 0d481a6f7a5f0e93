//! Request bodies, built once per photo before the run so the clients measure the server, not
//! the body encoder (a 12 MP JPEG is several megabytes; `Bytes` clones are reference counts).

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use ocular_test_support::hostile;

use crate::mix::{Kind, Rng};

/// Fixed multipart boundary: long and unlikely to occur inside a JPEG or PNG.
pub const BOUNDARY: &str = "ocular-load-5f1b7c2e9a4d4c0b8e36";

/// One photo file, read into memory.
#[derive(Debug, Clone)]
pub struct Photo {
    pub name: String,
    pub bytes: Bytes,
}

impl Photo {
    pub fn read(path: &Path) -> anyhow::Result<Photo> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read photo {}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "photo".into());
        Ok(Photo { name, bytes: bytes.into() })
    }

    /// The declared part type, from the extension (the server sniffs the content anyway).
    fn content_type(&self) -> &'static str {
        let lower = self.name.to_ascii_lowercase();
        match lower.rsplit('.').next() {
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            _ => "application/octet-stream",
        }
    }
}

/// Fields sent with every analyze request (the skin model's metadata inputs).
#[derive(Debug, Clone)]
pub struct AnalyzeFields {
    pub age: String,
    pub sex: String,
    pub location: String,
}

/// A `multipart/form-data` body: text fields, then the file part named `image`.
pub fn multipart(fields: &[(&str, &str)], photo: &Photo) -> Bytes {
    let mut body = Vec::with_capacity(photo.bytes.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            photo.name.replace('"', "_"),
            photo.content_type()
        )
        .as_bytes(),
    );
    body.extend_from_slice(&photo.bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body.into()
}

/// One request ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: String,
    pub content_type: String,
    pub body: Bytes,
}

/// Every body a run can send, indexed by photo or query.
#[derive(Debug)]
pub struct Payloads {
    prefix: String,
    analyze: Vec<Bytes>,
    search: Vec<Bytes>,
    texts: Vec<Bytes>,
    attack_json: Bytes,
    attack_strip: Bytes,
}

/// `{"query":"cat","pad":[0,0,…]}` of about `bytes` bytes (issue 16's JSON attack).
pub fn padded_json(bytes: usize) -> Bytes {
    let mut body = br#"{"query":"cat","pad":["#.to_vec();
    body.reserve(bytes + 2);
    while body.len() + 4 < bytes {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]}");
    body.into()
}

/// A PNG that declares `width x height` RGB pixels, with an empty image stream: what a
/// decoder would allocate is decided by the header alone.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    hostile::png_header(width, height, hostile::EMPTY_ZLIB)
}

impl Payloads {
    pub fn new(prefix: &str, photos: &[Photo], texts: &[String], top_k: usize, fields: &AnalyzeFields) -> Payloads {
        let analyze_fields =
            [("age", fields.age.as_str()), ("sex", fields.sex.as_str()), ("location", fields.location.as_str())];
        let top_k_text = top_k.to_string();
        Payloads {
            prefix: prefix.trim_end_matches('/').to_string(),
            analyze: photos.iter().map(|p| multipart(&analyze_fields, p)).collect(),
            search: photos.iter().map(|p| multipart(&[("top_k", &top_k_text)], p)).collect(),
            texts: texts.iter().map(|q| serde_json::json!({ "query": q, "top_k": top_k }).to_string().into()).collect(),
            attack_json: padded_json(18_000_000),
            attack_strip: multipart(&[], &Photo { name: "strip.png".into(), bytes: png_header(1_000_000, 2).into() }),
        }
    }

    /// The request for `kind`, with the photo or query drawn from `rng`.
    pub fn prepare(&self, kind: Kind, rng: &mut Rng) -> Prepared {
        let pick = |v: &[Bytes], rng: &mut Rng| v[rng.below(v.len() as u64) as usize].clone();
        let form = format!("multipart/form-data; boundary={BOUNDARY}");
        let (path, content_type, body) = match kind {
            // ocular refuses photos that do not look like skin (422) unless forced; the load
            // is about capacity and memory, so every analyze is forced.
            Kind::Analyze => ("/api/v1/analyze?gradcam=false&force=true", form, pick(&self.analyze, rng)),
            Kind::AnalyzeGradcam => ("/api/v1/analyze?gradcam=true&force=true", form, pick(&self.analyze, rng)),
            Kind::SearchPhoto => ("/api/v1/search", form, pick(&self.search, rng)),
            Kind::SearchText => ("/api/v1/search/text", "application/json".into(), pick(&self.texts, rng)),
            Kind::AttackJson => ("/api/v1/search/text", "application/json".into(), self.attack_json.clone()),
            Kind::AttackStrip => ("/api/v1/search", form, self.attack_strip.clone()),
        };
        Prepared { path: format!("{}{path}", self.prefix), content_type, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Photo {
        Photo { name: "mole.JPG".into(), bytes: Bytes::from_static(b"\xff\xd8\xff\xe0 not really a jpeg") }
    }

    #[test]
    fn multipart_has_fields_then_the_file_and_a_closing_boundary() {
        let body = multipart(&[("age", "45"), ("sex", "female")], &photo());
        let text = String::from_utf8_lossy(&body);
        let age = text.find("name=\"age\"\r\n\r\n45\r\n").expect("age field");
        let sex = text.find("name=\"sex\"\r\n\r\nfemale\r\n").expect("sex field");
        let file = text.find("name=\"image\"; filename=\"mole.JPG\"\r\nContent-Type: image/jpeg\r\n\r\n").unwrap();
        assert!(age < sex && sex < file);
        assert!(body.ends_with(format!("not really a jpeg\r\n--{BOUNDARY}--\r\n").as_bytes()));
        assert_eq!(text.matches(&format!("--{BOUNDARY}\r\n")).count(), 3);
    }

    #[test]
    fn each_kind_goes_to_its_route() {
        let fields = AnalyzeFields { age: "45".into(), sex: "female".into(), location: "trunk".into() };
        let p = Payloads::new("/base/", &[photo()], &["a cup of coffee".into()], 7, &fields);
        let mut rng = Rng::new(1);
        let a = p.prepare(Kind::AnalyzeGradcam, &mut rng);
        assert_eq!(a.path, "/base/api/v1/analyze?gradcam=true&force=true");
        assert!(a.content_type.starts_with("multipart/form-data; boundary="));
        assert!(String::from_utf8_lossy(&a.body).contains("name=\"location\"\r\n\r\ntrunk"));
        let s = p.prepare(Kind::SearchPhoto, &mut rng);
        assert_eq!(s.path, "/base/api/v1/search");
        assert!(String::from_utf8_lossy(&s.body).contains("name=\"top_k\"\r\n\r\n7"));
        let t = p.prepare(Kind::SearchText, &mut rng);
        assert_eq!((t.path.as_str(), t.content_type.as_str()), ("/base/api/v1/search/text", "application/json"));
        let json: serde_json::Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(json, serde_json::json!({ "query": "a cup of coffee", "top_k": 7 }));
        let j = p.prepare(Kind::AttackJson, &mut rng);
        assert_eq!(j.path, "/base/api/v1/search/text");
        assert!(j.body.len() >= 17_999_990 && j.body.len() <= 18_000_000, "{}", j.body.len());
        let json: serde_json::Value = serde_json::from_slice(&j.body).unwrap();
        assert_eq!(json["query"], "cat");
        let strip = p.prepare(Kind::AttackStrip, &mut rng);
        assert_eq!(strip.path, "/base/api/v1/search");
        assert!(String::from_utf8_lossy(&strip.body).contains("filename=\"strip.png\""));
    }

    #[test]
    fn the_strip_png_declares_its_size() {
        let png = png_header(1_000_000, 2);
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1_000_000);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 2);
    }
}
