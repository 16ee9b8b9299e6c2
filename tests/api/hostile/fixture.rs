//! What the hostile cases aim at: a small booking history (two concerts, a
//! holder with a reservation, a visitor, a waiting and a spent user) and the
//! kinds of token a case may send.

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{json_of, test_config, TestApp, User, ADMIN_TOKEN};

/// A user, their queue token and their user token.
#[derive(Debug, Clone)]
pub(super) struct Who {
    pub(super) user_id: Uuid,
    pub(super) token: String,
    pub(super) user_token: String,
}

/// `user`, signed in: with the user token the service mints for them.
async fn who(app: &TestApp, user: User) -> Who {
    Who {
        user_token: app.user_token(user.user_id).await,
        user_id: user.user_id,
        token: user.token,
    }
}

/// Ids and tokens of a small booking history for the cases to aim at.
#[derive(Debug, Clone)]
pub(super) struct Fixture {
    pub(super) concert_a: String,
    pub(super) date_a: String,
    pub(super) seat_a: String,
    pub(super) concert_b: String,
    pub(super) date_b: String,
    /// Holds `reservation` on concert A.
    pub(super) holder: Who,
    pub(super) reservation: String,
    /// Active on concert B.
    pub(super) visitor: Who,
    /// Waiting in concert A's queue.
    pub(super) waiting: Who,
    /// Spent by paying.
    pub(super) expired: Who,
}

/// The token a case sends.
#[derive(Debug, Clone)]
pub(super) enum Tok {
    None,
    Holder,
    Visitor,
    Waiting,
    Expired,
    /// The holder's user token.
    HolderUser,
    /// The visitor's user token.
    VisitorUser,
    /// The holder's user token with its signature changed.
    TamperedUser,
    Admin,
    /// Right shape, never issued.
    Forged,
    /// The holder's token with its signature changed.
    Tampered,
    /// `Bearer <anything>`.
    Raw(String),
    /// A whole `Authorization` header value.
    Header(String),
}

impl Tok {
    pub(super) fn header(&self, fx: &Fixture) -> Option<String> {
        let bearer = |token: &str| Some(format!("Bearer {token}"));
        match self {
            Tok::None => None,
            Tok::Holder => bearer(&fx.holder.token),
            Tok::Visitor => bearer(&fx.visitor.token),
            Tok::Waiting => bearer(&fx.waiting.token),
            Tok::Expired => bearer(&fx.expired.token),
            Tok::HolderUser => bearer(&fx.holder.user_token),
            Tok::VisitorUser => bearer(&fx.visitor.user_token),
            Tok::TamperedUser => {
                // A character of the signature changed (not the last one, whose
                // low bits may be base64url padding).
                let mut chars: Vec<char> = fx.holder.user_token.chars().collect();
                let at = chars.len() - 5;
                chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                bearer(&chars.into_iter().collect::<String>())
            }
            Tok::Admin => bearer(ADMIN_TOKEN),
            Tok::Forged => bearer(&format!(
                "{}.{}{}",
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple()
            )),
            Tok::Tampered => {
                let mut token = fx.holder.token.clone();
                let last = token.pop().unwrap();
                token.push(if last == '0' { '1' } else { '0' });
                bearer(&token)
            }
            Tok::Raw(raw) => bearer(raw),
            Tok::Header(value) => Some(value.clone()),
        }
    }
}

/// Builds the fixture: two concerts, a holder with a reservation, a visitor
/// of the other concert, a waiting user and one whose token paying spent.
pub(super) async fn fixture(app: &TestApp) -> Fixture {
    let concert_a = app.create_concert(1, 30, 1000).await;
    let concert_b = app.create_concert(1, 5, 1000).await;
    let holder = app.active_user(&concert_a.concert_id).await;
    let seats = app.free_seats(&holder, &concert_a, 0).await;
    let seat = |n: usize| seats[n].seat_id.to_string();
    let held: Value = json_of(&app.hold(&holder, &seat(0)).await);
    let reservation = held["reservation_id"].as_str().unwrap().to_string();
    let visitor = app.active_user(&concert_b.concert_id).await;
    // Spent: holds, pays, and its token expires (freeing its place).
    let expired = app.active_user(&concert_a.concert_id).await;
    let sold: Value = json_of(&app.hold(&expired, &seat(1)).await);
    app.fund(expired.user_id, 1000).await;
    let paid = app
        .pay(&expired, sold["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(paid.status, 201);
    // The active limit is 2: a third user after the holder and a filler waits.
    let _filler = app.active_user(&concert_a.concert_id).await;
    let waiting_id = Uuid::new_v4();
    let (_, entered) = app.enter_queue(waiting_id, &concert_a.concert_id).await;
    assert_eq!(entered["status"], "waiting");
    let waiting = User {
        user_id: waiting_id,
        token: entered["token"].as_str().unwrap().to_string(),
    };
    Fixture {
        concert_a: concert_a.concert_id,
        date_a: concert_a.date_ids[0].clone(),
        seat_a: seat(2),
        concert_b: concert_b.concert_id,
        date_b: concert_b.date_ids[0].clone(),
        holder: who(app, holder).await,
        reservation,
        visitor: who(app, visitor).await,
        waiting: who(app, waiting).await,
        expired: who(app, expired).await,
    }
}

/// Test settings with two active places per concert, so that a user waits.
pub(super) fn hostile_config() -> concert::config::Config {
    let mut config = test_config();
    config.queue_active_max = 2;
    config
}
