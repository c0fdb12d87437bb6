//! A node that becomes a standby keeps only what the stream holds: the events past the point
//! where its log and the stream part are its own, never acknowledged (a writer acknowledges an
//! event only once the stream holds it), and its successor may have written others there.
use anyhow::{bail, Context};
use async_nats::jetstream::stream::Stream;
use journey_event_log::{hash_of, SledStorage, Storage};

/// Where `storage` and `stream` part: the last position both hold with the same event (by hash;
/// the chain makes every earlier one the same too). The stream's sequence is the position.
async fn common_prefix(
    storage: &SledStorage,
    stream: &Stream,
    stream_last: u64,
) -> anyhow::Result<u64> {
    let same = |position: u64| async move {
        if position == 0 {
            return Ok::<bool, anyhow::Error>(true);
        }
        let ours = storage
            .read(position, position, 1)?
            .into_iter()
            .next()
            .with_context(|| format!("the log has no event at position {position}"))?;
        let theirs = stream
            .get_raw_message(position)
            .await
            .with_context(|| format!("reading the stream's message {position}"))?;
        Ok(hash_of(&theirs.payload) == ours.hash)
    };
    let mut high = storage.last_position()?.min(stream_last);
    if same(high).await? {
        return Ok(high);
    }
    // Invariant: `low` is the same, `high` is not.
    let mut low = 0;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if same(middle).await? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// Drops the events of `storage` the stream does not hold; returns how many. `published`: the
/// last position this log knows the stream held (its outbox's cursor); a stream that does not hold
/// those is not this log's, or lost acknowledged events, and nothing is dropped.
pub async fn drop_unreplicated(
    storage: &SledStorage,
    stream: &Stream,
    published: u64,
) -> anyhow::Result<u64> {
    let mut stream = stream.clone();
    let info = stream.info().await.context("stream information")?;
    let (name, last) = (info.config.name.clone(), info.state.last_sequence);
    let keep = common_prefix(storage, &stream, last).await?;
    // What the outbox saw acknowledged may be past what a crash left of the log (the cluster's
    // copy and the local fsync run side by side): only what the log still holds is checked.
    let confirmed = published.min(storage.last_position()?);
    if keep < confirmed {
        bail!(
            "the JetStream stream {name} does not hold the events this log saw it hold (its \
             position {} differs, the stream confirmed up to {published}): the stream is not this \
             log's, or it lost acknowledged events; nothing was dropped. Compare with `journey \
             verify` and rebuild this node with `journey restore --from-nats` if the stream is right",
            keep + 1,
            published = confirmed
        );
    }
    let dropped = tokio::task::block_in_place(|| storage.truncate_after(keep))?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            kept = keep,
            "dropped the {dropped} events after position {keep}: the stream {name} does not hold \
             them, so they were never acknowledged (their clients were told UNAVAILABLE and retry \
             against the writer with the same event ids)"
        );
    }
    Ok(dropped)
}
