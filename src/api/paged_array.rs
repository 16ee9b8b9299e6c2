//! An answer `{"<field>": [...]}` whose array is read and written a page at a
//! time: a list as long as a wallet's history or the whole catalogue costs
//! the server one page of memory, not the whole answer, and holds no
//! database connection while a slow client reads.

use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Answers `{"<field>": [first, then every page after it]}`, pages of
/// `page_items` items. `first` is the first page, read by the handler (so
/// that an empty list can be answered as the handler sees fit);
/// `next_page(last)` reads the page after the item `last`. A list that fits in its first page is answered whole, with a
/// `Content-Length`; a longer one is sent chunked as its pages are read.
/// When a later page cannot be read the answer is cut short: its status is
/// already sent, and a body that is not valid JSON is the only way left to
/// say that it is incomplete.
pub fn paged_array<T, F, Fut>(
    field: &'static str,
    page_items: usize,
    first: Vec<T>,
    next_page: F,
) -> Response
where
    T: Serialize + Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = sqlx::Result<Vec<T>>> + Send + 'static,
{
    let whole = first.len() < page_items;
    let mut pages = Pages {
        field,
        page_items,
        page: Some(first),
        next_page,
        opened: false,
        written: 0,
    };
    if whole {
        let body = pages.render_page().expect("the page is there").0;
        return ([(CONTENT_TYPE, "application/json")], body).into_response();
    }
    let body = Body::from_stream(futures::stream::unfold(pages, Pages::next_chunk));
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

struct Pages<T, F> {
    field: &'static str,
    page_items: usize,
    /// The page to write next; `None` once the closing bracket is written.
    page: Option<Vec<T>>,
    next_page: F,
    opened: bool,
    written: usize,
}

impl<T, F, Fut> Pages<T, F>
where
    T: Serialize + Send + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = sqlx::Result<Vec<T>>> + Send + 'static,
{
    async fn next_chunk(mut self) -> Option<(Result<Bytes, sqlx::Error>, Self)> {
        let (chunk, last) = self.render_page()?;
        if let Some(last) = last {
            match (self.next_page)(last).await {
                Ok(page) => self.page = Some(page),
                Err(error) => {
                    tracing::warn!(%error, written = self.written, "a paged answer was cut short");
                    return Some((Err(error), self));
                }
            }
        }
        Some((Ok(chunk), self))
    }

    /// The current page as JSON text, closing the answer when it is the last
    /// one, and the item to read the next page after when it is not.
    fn render_page(&mut self) -> Option<(Bytes, Option<T>)> {
        let mut page = self.page.take()?;
        let full = page.len() >= self.page_items;
        let mut text = Vec::with_capacity(page.len() * 256);
        if !self.opened {
            self.opened = true;
            text.extend_from_slice(format!("{{\"{}\":[", self.field).as_bytes());
        }
        for item in &page {
            if self.written > 0 {
                text.push(b',');
            }
            serde_json::to_writer(&mut text, item).expect("an item of a list serializes");
            self.written += 1;
        }
        let last = if full { page.pop() } else { None };
        if last.is_none() {
            text.extend_from_slice(b"]}");
        }
        Some((Bytes::from(text), last))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::to_bytes;
    use axum::body::HttpBody;
    use serde_json::{json, Value};

    use super::*;

    const PAGE_ITEMS: usize = 100;

    /// Answers `0..count` in pages after the item given, recording each item asked after.
    fn numbers(count: u32, asked_after: Arc<Mutex<Vec<u32>>>) -> Response {
        let first: Vec<u32> = (0..count).take(PAGE_ITEMS).collect();
        paged_array("numbers", PAGE_ITEMS, first, move |last: u32| {
            asked_after.lock().unwrap().push(last);
            let page = (last + 1..count).take(PAGE_ITEMS).collect();
            async move { Ok(page) }
        })
    }

    async fn body_of(response: Response) -> Value {
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).expect("the answer is JSON")
    }

    #[tokio::test]
    async fn a_list_that_fits_one_page_is_answered_whole_with_its_size_known() {
        let asked_after = Arc::new(Mutex::new(Vec::new()));
        let response = numbers(3, asked_after.clone());

        assert!(response.body().size_hint().exact().is_some());
        assert_eq!(body_of(response).await, json!({"numbers": [0, 1, 2]}));
        assert!(asked_after.lock().unwrap().is_empty());

        let empty = paged_array("numbers", PAGE_ITEMS, Vec::<u32>::new(), |_| async {
            Ok(vec![])
        });
        assert_eq!(body_of(empty).await, json!({"numbers": []}));
    }

    #[tokio::test]
    async fn a_longer_list_is_read_page_by_page_after_each_page_s_last_item() {
        let count = 2 * PAGE_ITEMS as u32 + 7;
        let asked_after = Arc::new(Mutex::new(Vec::new()));
        let response = numbers(count, asked_after.clone());

        assert_eq!(response.body().size_hint().exact(), None);
        let expected: Vec<u32> = (0..count).collect();
        assert_eq!(body_of(response).await, json!({ "numbers": expected }));
        let page = PAGE_ITEMS as u32;
        assert_eq!(*asked_after.lock().unwrap(), vec![page - 1, 2 * page - 1]);
    }

    #[tokio::test]
    async fn a_list_of_exactly_one_page_ends_with_an_empty_read() {
        let asked_after = Arc::new(Mutex::new(Vec::new()));
        let response = numbers(PAGE_ITEMS as u32, asked_after.clone());

        let expected: Vec<u32> = (0..PAGE_ITEMS as u32).collect();
        assert_eq!(body_of(response).await, json!({ "numbers": expected }));
        assert_eq!(*asked_after.lock().unwrap(), vec![PAGE_ITEMS as u32 - 1]);
    }

    #[tokio::test]
    async fn a_page_that_cannot_be_read_cuts_the_answer_short_rather_than_ending_it() {
        let first: Vec<u32> = (0..PAGE_ITEMS as u32).collect();
        let response = paged_array("numbers", PAGE_ITEMS, first, |_| async {
            Err::<Vec<u32>, _>(sqlx::Error::PoolTimedOut)
        });

        assert!(
            to_bytes(response.into_body(), usize::MAX).await.is_err(),
            "a client must not take the first page for the whole list"
        );
    }
}
