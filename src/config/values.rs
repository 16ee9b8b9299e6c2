//! How each setting's text is read: whole numbers within their ranges,
//! tokens and origins as requests carry them, the address to listen on.

use std::net::{SocketAddr, ToSocketAddrs};

/// A setting's whole number from `LO` to `HI`, in plain digits: a word, a
/// sign or a fraction is refused with the range, as a number beyond it is.
pub(super) fn whole_u64<const LO: u64, const HI: u64>(text: &str) -> Result<u64, String> {
    whole_in(text, LO, HI)
}

/// [`whole_u64`] for a setting kept as a `u32`.
pub(super) fn whole_u32<const LO: u32, const HI: u32>(text: &str) -> Result<u32, String> {
    let number = whole_in(text, u64::from(LO), u64::from(HI))?;
    Ok(u32::try_from(number).expect("within a u32 range"))
}

/// [`whole_u64`] for a setting kept as an `i64` (a log position).
pub(super) fn whole_i64<const LO: u64, const HI: u64>(text: &str) -> Result<i64, String> {
    let number = whole_in(text, LO, HI)?;
    Ok(i64::try_from(number).expect("within an i64 range"))
}

fn whole_in(text: &str, low: u64, high: u64) -> Result<u64, String> {
    let plain = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    plain
        .then(|| text.parse().ok())
        .flatten()
        .filter(|number| (low..=high).contains(number))
        .ok_or_else(|| format!("expected a whole number from {low} to {high}"))
}

/// A bearer token arrives without the spaces around it: a token set with
/// them would refuse every request, silently.
pub(super) fn admin_token(text: &str) -> Result<String, String> {
    if text.trim().len() == text.len() || text.trim().is_empty() {
        Ok(text.to_string())
    } else {
        Err("has spaces around it, and no request could send it: remove them".to_string())
    }
}

/// One allowed origin, as a browser sends it in `Origin`
/// (`scheme://host[:port]`, lower case, no default port), or `*`. Spaces
/// around it are dropped (`a, b`); a path, even `/`, is refused, since no
/// `Origin` header ever carries one and the entry would allow nothing. An
/// empty entry (`CONCERT_CORS_ORIGINS=`) allows nothing, as no setting.
pub(super) fn cors_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text == "*" {
        return Ok(text.to_string());
    }
    let refused = || {
        "expected an origin such as https://tickets.example or http://localhost:3000 (no path), or *"
            .to_string()
    };
    let url = url::Url::parse(text).map_err(|_| refused())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.path() == "/"
        && !text.ends_with('/');
    plain
        .then(|| url.origin().ascii_serialization())
        .ok_or_else(refused)
}

/// The address to listen on: `IP:port`, or `host:port` with the name's
/// address (`localhost:8080`), an IPv4 one where it has both.
pub(super) fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let refused =
        |why: String| format!("expected IP:port or host:port, such as 127.0.0.1:8080 ({why})");
    text.to_socket_addrs()
        .map_err(|error| refused(error.to_string()))?
        .min_by_key(SocketAddr::is_ipv6)
        .ok_or_else(|| refused("the name has no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_to_listen_on_is_an_ip_or_a_name_and_a_port() {
        assert_eq!(
            listen_address("0.0.0.0:8080").unwrap().to_string(),
            "0.0.0.0:8080"
        );
        assert_eq!(
            listen_address("[::1]:8080").unwrap().to_string(),
            "[::1]:8080"
        );
        assert_eq!(
            listen_address("localhost:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        for bad in ["localhost", "8080", ":8080", "127.0.0.1:99999", ""] {
            assert!(listen_address(bad).is_err(), "{bad}");
        }
    }
}
