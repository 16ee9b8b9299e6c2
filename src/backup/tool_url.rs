//! How a PostgreSQL client tool (`pg_dump`, `pg_restore`, `pgbench`) is told
//! where to connect: the URL goes on its command line without its password,
//! and the password goes to its environment (`PGPASSWORD`). Every local user
//! can read a process's command line (`ps`, `/proc/<pid>/cmdline`); only its
//! owner and root can read its environment.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use percent_encoding::percent_decode_str;
use url::Url;

/// A connection URL split for a client tool's command line and environment.
#[derive(Clone, PartialEq, Eq)]
pub struct ToolConnection {
    /// The URL without its password (as the `url` crate writes it out).
    pub url: String,
    /// The password it held, decoded, if any.
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
    /// query parameter (which wins, as it does for libpq and sqlx). Parsed
    /// and decoded with the crate sqlx uses for the service's own connection
    /// (which the callers open first), so the tool gets the same password.
    /// Anything else, or a URL without a password, is kept whole.
    pub fn new(text: &str) -> Self {
        let unchanged = || ToolConnection {
            url: text.to_string(),
            password: None,
        };
        let Ok(mut url) = Url::parse(text) else {
            return unchanged();
        };
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return unchanged();
        }
        // Bytes, not UTF-8: `PGPASSWORD` takes whatever the URL spelled.
        let mut password = url
            .password()
            .map(|secret| OsString::from_vec(percent_decode_str(secret).collect()));
        if let Some((_, secret)) = url.query_pairs().filter(|(k, _)| k == "password").last() {
            password = Some(secret.into_owned().into());
            // The other parameters stay as written: re-encoding them as a
            // form would turn a `%20` into a `+`, which libpq does not read
            // as a space.
            let kept = url
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|pair| {
                    !form_urlencoded::parse(pair.as_bytes()).any(|(k, _)| k == "password")
                })
                .collect::<Vec<_>>()
                .join("&");
            url.set_query((!kept.is_empty()).then_some(kept.as_str()));
        }
        if password.is_none() {
            return unchanged();
        }
        // Fails only for a URL without a host, which has no user information.
        let _ = url.set_password(None);
        ToolConnection {
            url: url.into(),
            password,
        }
    }

    /// A command running `program` with the password, if any, in its
    /// `PGPASSWORD`; the caller puts `self.url` on its command line. Without
    /// a password the environment is left as it is, so a `PGPASSWORD` or
    /// passfile of the caller's still applies, as it did when the whole URL
    /// was passed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_and_everything_else_stays() {
        for (given, url, password) in [
            (
                "postgres://pwuser:PwSecretZ9x@db.example:6543/concert?sslmode=require",
                "postgres://pwuser@db.example:6543/concert?sslmode=require",
                "PwSecretZ9x",
            ),
            ("postgresql://u:p@[::1]:5432/db", "postgresql://u@[::1]:5432/db", "p"),
            // Decoded: `%XX` in the user information, a form in the query.
            ("postgres://op:p%40ss%3Aw%2Fo%25rd%20+x@h/d", "postgres://op@h/d", "p@ss:w/o%rd +x"),
            ("postgres://op:50%off%2@h/d", "postgres://op@h/d", "50%off%2"),
            ("postgres://op:a:b@c@h/d", "postgres://op@h/d", "a:b@c"),
            ("postgres://op:%EB%B9%84%EB%B0%80@h/d", "postgres://op@h/d", "비밀"),
            ("postgres://op:비밀@h/d", "postgres://op@h/d", "비밀"),
            // No user: the user information goes whole.
            ("postgres://:s3cret@h/d?host=/run/pg", "postgres://h/d?host=/run/pg", "s3cret"),
            (
                "postgres://pwuser:s3cret@localhost/concertpw?host=/tmp/probe/data3&sslmode=disable",
                "postgres://pwuser@localhost/concertpw?host=/tmp/probe/data3&sslmode=disable",
                "s3cret",
            ),
            // The query's password wins and leaves; no host is fine there.
            (
                "postgres://op:first@h/d?host=/run/pg&password=p%26q+r&sslmode=disable",
                "postgres://op@h/d?host=/run/pg&sslmode=disable",
                "p&q r",
            ),
            ("postgres:///d?host=/run/pg&password=x", "postgres:///d?host=/run/pg", "x"),
            ("postgres://op@h/d?password=only", "postgres://op@h/d", "only"),
            // The other parameters keep their spelling: libpq reads `%20`
            // as a space but `+` as a plus.
            (
                "postgres://op@h/d?application_name=a%20b+c&password=x&options=-c%20a%3Db",
                "postgres://op@h/d?application_name=a%20b+c&options=-c%20a%3Db",
                "x",
            ),
        ] {
            let connection = ToolConnection::new(given);
            assert_eq!(connection.url, url, "{given}");
            assert_eq!(connection.password, Some(password.into()), "{given}");
        }
        // Not UTF-8: the bytes as they were.
        assert_eq!(
            ToolConnection::new("postgres://op:%FF@h/d").password,
            Some(OsString::from_vec(vec![0xff]))
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
            let connection = ToolConnection::new(url);
            assert_eq!((connection.url.as_str(), connection.password), (url, None));
        }
        // So is one the crate rejects; sqlx, which the callers connect with
        // before they run a tool, rejects it too.
        for url in [
            "postgres://:s3cret@/concert?host=/run/pg",
            "postgres://u:s3cret@h1:5432,h2:5433/concert",
        ] {
            assert_eq!(ToolConnection::new(url).password, None, "{url}");
            assert!(
                url.parse::<sqlx::postgres::PgConnectOptions>().is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn the_debug_form_hides_the_password() {
        let shown = format!("{:?}", ToolConnection::new("postgres://u:hunter2@h/d"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_password_goes_to_pgpassword() {
        let command = ToolConnection::new("postgres://u:p%40w@h/d").command("pg_dump");
        let password = command
            .get_envs()
            .find(|(key, _)| *key == "PGPASSWORD")
            .and_then(|(_, value)| value);
        assert_eq!(password, Some(std::ffi::OsStr::new("p@w")));

        let command = ToolConnection::new("postgres://u@h/d").command("pg_dump");
        assert_eq!(command.get_envs().count(), 0);
    }
}
