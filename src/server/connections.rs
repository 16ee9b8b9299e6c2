//! Accepting TCP connections and serving HTTP/1.1 and HTTP/2 on each with
//! hyper, as `axum::serve` does, except for connections that open with an
//! event-stream request (`event_streams`).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Version};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::event_streams;
use super::idle::Activity;
use super::parse_errors::ProblemsForParseErrors;
use super::stalled_streams::StreamWatch;
use super::unread_bodies;
use crate::draining::{close_if_draining, Draining};

/// HTTP/2 connections are pinged this often, and closed when a ping is not
/// answered within `PING_ANSWERED_WITHIN`.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_ANSWERED_WITHIN: Duration = Duration::from_secs(20);
/// hyper's HTTP/1.1 read buffer, which bounds a head as it arrives.
const HEAD_BUFFER: usize = crate::api::MAX_HEAD_BYTES;
/// Requests in flight on one HTTP/2 connection. Each answer waits whole in
/// memory until the client's flow-control window lets it out, so hyper's
/// default of 200 let one stalled connection hold 80 MB of seat listings.
const STREAMS_PER_CONNECTION: u32 = 16;

/// Serves `router` on every connection `listener` accepts until `stop` turns
/// true; returns the connections still open, to be closed gracefully.
///
/// A client has `head_within` to send a request's head: from the
/// connection's start, or from the last answer on a kept-alive connection
/// (which is then closed, idle). Without it, connections that send nothing,
/// or a byte now and then, were kept for ever, each with its buffers.
///
/// At most `most` connections are served at once; while that many are open,
/// no more are accepted (they wait in the listen backlog), so a crowd of
/// idle or streaming sockets cannot take every file descriptor the process
/// has and leave it unable to answer anyone.
pub async fn accept(
    listener: TcpListener,
    router: Router,
    draining: Draining,
    head_within: Duration,
    most: u32,
    mut stop: watch::Receiver<bool>,
) -> Connections {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(head_within)
        .max_buf_size(HEAD_BUFFER)
        // A client that shuts its sending side after a request (HTTP/1.1
        // allows it) still gets the answer; by default hyper closes the
        // connection unanswered.
        .half_close(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(PING_EVERY)
        .keep_alive_timeout(PING_ANSWERED_WITHIN)
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .max_header_list_size(HEAD_BUFFER as u32);
    let builder = Arc::new(builder);
    let connections = Connections {
        tasks: TaskTracker::new(),
    };
    let places = Arc::new(Semaphore::new(most as usize));
    let stream_openings = Arc::new(Semaphore::new(event_streams::OPENINGS_AT_ONCE));
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => place.expect("never closed"),
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                pause_after(error).await;
                continue;
            }
        };
        let (router, builder) = (router.clone(), builder.clone());
        let draining = draining.clone();
        let stream_openings = stream_openings.clone();
        let mut stop = stop.clone();
        connections.tasks.spawn(async move {
            // Given back when the connection ends, whichever way.
            let _place = place;
            let opening = tokio::select! {
                opening = tokio::time::timeout(head_within, event_streams::opening(&stream)) => {
                    match opening {
                        Ok(opening) => opening,
                        // Nothing sent in all that time: closed.
                        Err(_) => return,
                    }
                }
                // Nothing asked yet: closed, as hyper closes an idle connection.
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            match opening {
                Some(opening) => {
                    let opening = opening.sent_by(remote);
                    event_streams::serve(stream, opening, router, &stream_openings, head_within)
                        .await
                }
                None => {
                    let connection = Connection {
                        stream,
                        remote,
                        router,
                        draining,
                    };
                    serve_with_hyper(connection, &builder, head_within, stop).await
                }
            }
        });
    }
    connections
}

/// The connections being served.
pub struct Connections {
    tasks: TaskTracker,
}

impl Connections {
    /// Waits until every connection has answered its request in flight and
    /// closed: hyper's once their responses are written (each closes
    /// gracefully when the service stops), the event streams once their
    /// streams end, which they do when the service stops.
    pub async fn close(self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// How long a connection found stalled is given to finish the answers in
/// flight on it, after its GOAWAY, before it is dropped.
const STALLED_GRACE: Duration = Duration::from_secs(5);

/// An accepted connection and what serving it needs.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    draining: Draining,
}

/// Serves one connection with hyper until it ends; closes it gracefully when
/// the service stops or when it has had nothing in flight for `idle_within`,
/// and drops it (after a GOAWAY and `STALLED_GRACE`) when an event stream or
/// an HTTP/2 answer on it is stuck behind a client that reads nothing
/// (`stalled_streams`).
async fn serve_with_hyper(
    connection: Connection,
    builder: &Builder<TokioExecutor>,
    idle_within: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let Connection {
        stream,
        remote,
        router,
        draining,
    } = connection;
    let activity = Activity::default();
    let counted = activity.clone();
    let streams = StreamWatch::default();
    let watching = streams.clone();
    let service = tower::service_fn(move |request: Request<Incoming>| {
        let (router, in_flight) = (router.clone(), counted.begin());
        let (watching, draining) = (watching.clone(), draining.clone());
        async move {
            let http1 = request.version() <= Version::HTTP_11;
            let (mut request, body_read) = unread_bodies::watch(request);
            request.extensions_mut().insert(ConnectInfo(remote));
            let Ok(mut response) = router.oneshot(request).await;
            unread_bodies::close_if_unread(&mut response, body_read);
            close_if_draining(&draining, http1, &mut response);
            // An HTTP/2 answer waits for its stream's flow-control window
            // before hyper asks its body for more: one a client never opens
            // held its whole answer (up to 16 listings a connection, 6 MB)
            // for good. HTTP/1's stuck writes are the socket's watch's.
            if is_event_stream(&response) || !http1 {
                response = response.map(|body| watching.watch(body));
            }
            // In flight until its body has been sent, or dropped.
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &in_flight;
                    frame
                }))
            }))
        }
    });
    // hyper's own answer to a request it cannot parse becomes a problem document.
    let stream = TokioIo::new(ProblemsForParseErrors::new(streams.resettable(stream)));
    let connection =
        builder.serve_connection_with_upgrades(stream, TowerToHyperService::new(service));
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(error) = ended {
                    tracing::trace!(%error, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = activity.idle_for(idle_within), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            // Its client reads nothing: dropped, as nothing could be sent;
            // a GOAWAY first tells an HTTP/2 client which of its requests
            // were not taken, and lets those in flight finish for a moment.
            () = streams.stalled() => break,
        }
    }
    if !closing {
        connection.as_mut().graceful_shutdown();
    }
    let _ = tokio::time::timeout(STALLED_GRACE, connection.as_mut()).await;
}

fn is_event_stream<B>(response: &axum::http::Response<B>) -> bool {
    response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// A client that gave up before its connection was accepted is no fault of
/// the listener's; anything else (most likely out of file descriptors) is
/// logged and accepting pauses a second, as `axum::serve` does, so that
/// closing connections can free some.
async fn pause_after(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
