//! Greenhouse's webhook signature: `Signature: sha256 <hex>`, the HMAC-SHA256 of the raw
//! request body keyed with the web hook's secret key (Greenhouse's web hook docs,
//! "Authentication"; the simulator's sender does the same).
//!
//! Contract: [`verify`] looks at nothing but the header value, the body and the key, compares in
//! constant time (`hmac`'s `verify_slice`, over `subtle`), and never echoes the header or the
//! key in its error: a caller may log the error as it is.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The only algorithm Greenhouse names in the header.
const ALGORITHM: &str = "sha256";

/// Why a request's signature was refused (the receiver answers 401 for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Signature header")]
    Missing,
    #[error("the Signature header is not `sha256 <64 hex digits>`")]
    Malformed,
    #[error("the signature does not match the body (wrong secret key, or a changed body)")]
    Mismatch,
}

/// HMAC-SHA256 of `body` keyed with `key`, as lowercase hex (what follows `sha256 ` in the
/// header).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    hex::encode(mac(key, body).finalize().into_bytes())
}

/// Checks a `Signature` header value (`None`: the header is absent) against `body`.
pub fn verify(key: &[u8], body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    let (algorithm, digest) = header
        .trim()
        .split_once(' ')
        .ok_or(SignatureError::Malformed)?;
    if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
        return Err(SignatureError::Malformed);
    }
    let digest = digest.trim();
    // A truncated digest is refused here, before any comparison: `verify_slice` would refuse it
    // too, but saying so names the problem.
    if digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let tag = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
    mac(key, body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

fn mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (long ones are hashed first), so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(body);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 4231 §4: HMAC-SHA-256 test cases 1–4, 6 and 7 (case 5 is a truncated output).
    #[test]
    fn rfc_4231_known_answers() {
        let long_key = vec![0xaa; 131];
        let cases: [(Vec<u8>, Vec<u8>, &str); 6] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                long_key.clone(),
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                long_key,
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(sign(&key, &data), want);
            let header = format!("sha256 {want}");
            assert_eq!(verify(&key, &data, Some(header.as_bytes())), Ok(()));
        }
    }

    #[test]
    fn only_the_exact_signature_of_the_exact_body_passes() {
        let key = b"greenhouse-secret-key";
        let body = br#"{"action":"delete_candidate","payload":{}}"#;
        let good = format!("sha256 {}", sign(key, body));
        assert_eq!(verify(key, body, Some(good.as_bytes())), Ok(()));
        // Upper-case hex and stray spaces around the value are still the same digest.
        let upper = format!("SHA256  {} ", sign(key, body).to_uppercase());
        assert_eq!(verify(key, body, Some(upper.as_bytes())), Ok(()));
        assert_eq!(verify(key, body, None), Err(SignatureError::Missing));
        let other_body = br#"{"action":"delete_candidate","payload":{"x":1}}"#;
        assert_eq!(
            verify(key, other_body, Some(good.as_bytes())),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-key", body, Some(good.as_bytes())),
            Err(SignatureError::Mismatch)
        );
        let truncated = &good[..good.len() - 2];
        assert_eq!(
            verify(key, body, Some(truncated.as_bytes())),
            Err(SignatureError::Malformed)
        );
        for bad in [
            "".to_string(),
            sign(key, body),
            format!("sha1 {}", sign(key, body)),
            format!("sha256 {}zz", &sign(key, body)[..62]),
            format!("sha256={}", sign(key, body)),
        ] {
            assert_eq!(
                verify(key, body, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            verify(key, body, Some(&[0xff, 0xfe])),
            Err(SignatureError::Malformed)
        );
    }
}
