//! Reading an answer's body within a cap, whatever HTTP client delivers its chunks.
//!
//! A server (or whatever stands in front of it) can send a body that never ends; the tool
//! reads at most [`ANSWER_BODY_LIMIT`] bytes of it and then stops reading, so one answer never
//! costs more memory than that. The client hands over its stream of chunks; this module owns
//! the rule.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// The most an answer's body may hold: the spec's answers are well under 1 KB.
pub const ANSWER_BODY_LIMIT: usize = 1 << 20;

/// A body read up to a cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CappedBody {
    Whole(Bytes),
    /// More than `limit` bytes came; reading stopped there.
    TooLarge {
        limit: usize,
    },
}

/// Reads `chunks` until they end or pass `limit` bytes (then stops and drops the stream, so
/// the connection is closed rather than drained).
pub async fn read_capped<S, E>(chunks: S, limit: usize) -> Result<CappedBody, E>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let mut chunks = std::pin::pin!(chunks);
    let Some(first) = chunks.next().await.transpose()? else {
        return Ok(CappedBody::Whole(Bytes::new()));
    };
    if first.len() > limit {
        return Ok(CappedBody::TooLarge { limit });
    }
    // The common answer is one chunk: hand it on without a copy.
    let Some(second) = chunks.next().await.transpose()? else {
        return Ok(CappedBody::Whole(first));
    };
    let mut body = BytesMut::with_capacity((first.len() + second.len()).min(limit));
    for chunk in [first, second] {
        if body.len() + chunk.len() > limit {
            return Ok(CappedBody::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    while let Some(chunk) = chunks.next().await.transpose()? {
        if body.len() + chunk.len() > limit {
            return Ok(CappedBody::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(CappedBody::Whole(body.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, ()>> {
        let chunks: Vec<Result<Bytes, ()>> = sizes.iter().map(|&n| Ok(Bytes::from(vec![b'x'; n]))).collect();
        futures::stream::iter(chunks)
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_whole_and_beyond_it_stop() {
        for sizes in [&[][..], &[10], &[4, 6], &[3, 3, 4], &[10, 0]] {
            let total: usize = sizes.iter().sum();
            assert_eq!(
                read_capped(chunks(sizes), 10).await,
                Ok(CappedBody::Whole(Bytes::from(vec![b'x'; total]))),
                "{sizes:?}"
            );
        }
        for sizes in [&[11][..], &[5, 6], &[3, 3, 3, 3], &[10, 1]] {
            assert_eq!(
                read_capped(chunks(sizes), 10).await,
                Ok(CappedBody::TooLarge { limit: 10 }),
                "{sizes:?}"
            );
        }
        let failing = futures::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err("cut")]);
        assert_eq!(read_capped(failing, 10).await, Err("cut"));
    }

    /// A body that never ends is read only up to the cap: the stream is not polled further.
    #[tokio::test]
    async fn an_endless_body_is_not_read_past_the_cap() {
        let mut n_polled = 0usize;
        let endless = futures::stream::repeat_with(|| {
            n_polled += 1;
            Ok::<_, ()>(Bytes::from_static(&[b'x'; 1000]))
        });
        assert_eq!(
            read_capped(endless, ANSWER_BODY_LIMIT).await,
            Ok(CappedBody::TooLarge {
                limit: ANSWER_BODY_LIMIT
            })
        );
        assert_eq!(n_polled, ANSWER_BODY_LIMIT / 1000 + 1);
    }
}
