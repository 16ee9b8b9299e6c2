//! Queue tokens: `<ticket id>.<HMAC-SHA256 of the id>` under a server secret.
//! The ticket id says which ticket; the 256-bit MAC makes the token
//! unguessable and unforgeable, and tokens never need to be stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use crate::ids::TicketId;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks queue tokens.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    /// A signer with the given secret.
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// Loads the database's token secret, creating it on first use, so every
    /// instance on one database accepts the same tokens.
    pub async fn from_database(pool: &PgPool) -> sqlx::Result<Self> {
        Ok(Self::new(
            crate::db::server_secret(pool, "queue_tokens").await?,
        ))
    }

    /// The token of a ticket.
    pub fn issue(&self, ticket_id: TicketId) -> String {
        format!(
            "{}.{}",
            ticket_id.0.simple(),
            hex::encode(self.mac(ticket_id).finalize().into_bytes())
        )
    }

    /// The ticket a token names, if the token is genuine.
    pub fn verify(&self, token: &str) -> Option<TicketId> {
        let (id, signature) = token.split_once('.')?;
        // One spelling per token, as issued (lower-case hex): a credential
        // that also works upper-cased would slip past exact-match lists
        // (revocation, log searches) outside the service.
        if id.len() != 32 || signature.len() != 64 || token.bytes().any(|b| b.is_ascii_uppercase())
        {
            return None;
        }
        let ticket_id = TicketId(Uuid::try_parse(id).ok()?);
        let signature = hex::decode(signature).ok()?;
        // verify_slice compares in constant time.
        self.mac(ticket_id).verify_slice(&signature).ok()?;
        Some(ticket_id)
    }

    fn mac(&self, ticket_id: TicketId) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(ticket_id.0.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_verifies_to_its_ticket() {
        let signer = TokenSigner::new(vec![7; 32]);
        let ticket = TicketId::new();
        assert_eq!(signer.verify(&signer.issue(ticket)), Some(ticket));
    }

    #[test]
    fn a_token_spelt_otherwise_than_issued_is_refused() {
        let signer = TokenSigner::new(vec![7; 32]);
        let token = signer.issue(TicketId::new());
        let (id, signature) = token.split_once('.').unwrap();

        assert_eq!(signer.verify(&token.to_uppercase()), None);
        assert_eq!(
            signer.verify(&format!("{}.{signature}", id.to_uppercase())),
            None
        );
        assert_eq!(
            signer.verify(&format!("{id}.{}", signature.to_uppercase())),
            None
        );
    }

    #[test]
    fn a_forged_or_foreign_token_is_refused() {
        let signer = TokenSigner::new(vec![7; 32]);
        let other = TokenSigner::new(vec![8; 32]);
        let ticket = TicketId::new();
        let token = signer.issue(ticket);
        assert_eq!(other.verify(&token), None);
        let mut tampered = token.clone();
        tampered.replace_range(40..41, if &token[40..41] == "0" { "1" } else { "0" });
        assert_eq!(signer.verify(&tampered), None);
        for garbage in ["", ".", "abc", "x.y", &token[..40], "é.é"] {
            assert_eq!(signer.verify(garbage), None);
        }
    }
}
