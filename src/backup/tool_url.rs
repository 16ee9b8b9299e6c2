//! How a PostgreSQL client tool (`pg_dump`, `pg_restore`, `pgbench`) is told
//! where to connect: the URL goes on its command line without its password,
//! and the password goes to its environment (`PGPASSWORD`). Every local user
//! can read a process's command line (`ps`, `/proc/<pid>/cmdline`); only its
//! owner and root can read its environment.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// A connection URL split for a client tool's command line and environment.
#[derive(Clone, PartialEq, Eq)]
pub struct ToolConnection {
    /// The URL without its password, every other part as it was given.
    pub url: String,
    /// The password it held, percent-decoded, if any.
    pub password: Option<OsString>,
}

impl std::fmt::Debug for ToolConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolConnection")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl ToolConnection {
    /// Takes the password out of a `postgres://` or `postgresql://` URL: the
    /// one of its user information (`user:password@`) and any `password`
    /// query parameter (which wins, as it does for libpq and sqlx). Decoded
    /// as sqlx decodes them for the service's own connections: `%XX` in the
    /// user information, form encoding (`+` too) in the query. Anything that
    /// is not such a URL is kept whole, with no password.
    pub fn new(url: &str) -> Self {
        let unchanged = || ToolConnection {
            url: url.to_string(),
            password: None,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return unchanged();
        };
        if !["postgres", "postgresql"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
        {
            return unchanged();
        }
        // The authority ends at the path, the query or the fragment.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after_authority) = rest.split_at(authority_end);
        let mut password = None;
        // The user information ends at the authority's last `@`; its first
        // `:` starts the password.
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, secret)) => {
                    password = Some(percent_decode(secret.as_bytes()));
                    if user.is_empty() {
                        host.to_string()
                    } else {
                        format!("{user}@{host}")
                    }
                }
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let (before_fragment, fragment) = match after_authority.find('#') {
            Some(at) => after_authority.split_at(at),
            None => (after_authority, ""),
        };
        let after_authority = match before_fragment.split_once('?') {
            Some((path, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if form_decode(key) == b"password" {
                        password = Some(OsString::from_vec(form_decode(value)));
                    } else {
                        kept.push(pair);
                    }
                }
                if kept.len() == query.split('&').count() {
                    before_fragment.to_string()
                } else if kept.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}?{}", kept.join("&"))
                }
            }
            None => before_fragment.to_string(),
        };
        ToolConnection {
            url: format!("{scheme}://{authority}{after_authority}{fragment}"),
            password,
        }
    }

    /// Gives the password, if any, to `command` through `PGPASSWORD`. Without
    /// one the environment is left as it is, so a `PGPASSWORD` or passfile of
    /// the caller's still applies, as it did when the whole URL was passed.
    pub fn set_password(&self, command: &mut std::process::Command) {
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
    }
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &[u8]) -> OsString {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |at: usize| text.get(at).and_then(|c| (*c as char).to_digit(16));
        match (text[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// A query key or value decoded as a form decodes it: `+` is a space.
fn form_decode(text: &str) -> Vec<u8> {
    percent_decode(text.replace('+', " ").as_bytes()).into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, Option<String>) {
        let connection = ToolConnection::new(url);
        let password = connection.password.map(|p| p.into_string().expect("utf-8"));
        (connection.url, password)
    }

    #[test]
    fn the_password_leaves_the_url_and_everything_else_stays() {
        assert_eq!(
            split("postgres://pwuser:PwSecretZ9x@db.example:6543/concert?sslmode=require"),
            (
                "postgres://pwuser@db.example:6543/concert?sslmode=require".to_string(),
                Some("PwSecretZ9x".to_string())
            )
        );
        assert_eq!(
            split("postgresql://u:p@[::1]:5432/db"),
            ("postgresql://u@[::1]:5432/db".to_string(), Some("p".into()))
        );
    }

    #[test]
    fn a_percent_encoded_password_is_decoded() {
        assert_eq!(
            split("postgres://op:p%40ss%3Aw%2Fo%25rd%20+x@localhost/concert"),
            (
                "postgres://op@localhost/concert".to_string(),
                Some("p@ss:w/o%rd +x".to_string())
            )
        );
        // Not an escape: kept as it is.
        assert_eq!(
            split("postgres://op:50%off%2@localhost/concert").1,
            Some("50%off%2".to_string())
        );
        // A `:` after the first belongs to the password, and so does an `@`
        // before the last.
        assert_eq!(
            split("postgres://op:a:b@c@localhost/concert"),
            (
                "postgres://op@localhost/concert".to_string(),
                Some("a:b@c".to_string())
            )
        );
        // Non-ASCII, as UTF-8.
        assert_eq!(
            split("postgres://op:%EB%B9%84%EB%B0%80@h/d").1,
            Some("비밀".to_string())
        );
    }

    #[test]
    fn a_url_without_a_password_is_unchanged() {
        for url in [
            "postgres://postgres@localhost:5432/concert?host=/tmp/crel-1-x/d",
            "postgres://localhost/concert",
            "postgres://op@h/d?sslmode=verify-full&application_name=a+b",
            "postgres:///concert?host=%2Fvar%2Frun%2Fpostgresql",
            "postgresql://u@h/d#frag",
            "host=/tmp dbname=concert",
            "",
        ] {
            assert_eq!(split(url), (url.to_string(), None), "{url}");
        }
    }

    #[test]
    fn the_socket_folder_and_other_parameters_are_kept() {
        assert_eq!(
            split("postgres://pwuser:s3cret@localhost/concertpw?host=/tmp/probe/data3&sslmode=disable"),
            (
                "postgres://pwuser@localhost/concertpw?host=/tmp/probe/data3&sslmode=disable"
                    .to_string(),
                Some("s3cret".to_string())
            )
        );
        // No user: the user information goes whole.
        assert_eq!(
            split("postgres://:s3cret@/concert?host=/run/pg"),
            (
                "postgres:///concert?host=/run/pg".to_string(),
                Some("s3cret".to_string())
            )
        );
    }

    #[test]
    fn a_password_parameter_leaves_the_query_and_wins() {
        assert_eq!(
            split("postgres://op:first@h/d?host=/run/pg&password=p%26q+r&sslmode=disable"),
            (
                "postgres://op@h/d?host=/run/pg&sslmode=disable".to_string(),
                Some("p&q r".to_string())
            )
        );
        assert_eq!(
            split("postgres://op@h/d?password=only"),
            ("postgres://op@h/d".to_string(), Some("only".to_string()))
        );
    }

    #[test]
    fn the_debug_form_hides_the_password() {
        let shown = format!("{:?}", ToolConnection::new("postgres://u:hunter2@h/d"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_password_goes_to_pgpassword() {
        let mut command = std::process::Command::new("pg_dump");
        ToolConnection::new("postgres://u:p%40w@h/d").set_password(&mut command);
        let password = command
            .get_envs()
            .find(|(key, _)| *key == "PGPASSWORD")
            .and_then(|(_, value)| value);
        assert_eq!(password, Some(std::ffi::OsStr::new("p@w")));

        let mut command = std::process::Command::new("pg_dump");
        ToolConnection::new("postgres://u@h/d").set_password(&mut command);
        assert_eq!(command.get_envs().count(), 0);
    }
}
