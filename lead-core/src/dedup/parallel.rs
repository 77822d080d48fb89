//! Work split over threads, results in order.

/// Runs `work` on contiguous chunks of `items` on up to
/// [`std::thread::available_parallelism`] threads and concatenates the
/// results in order. A chunk whose thread cannot start (or fails) runs on
/// the calling thread.
pub(crate) fn parallel_chunks<T: Sync, R: Send>(
    items: &[T],
    min_parallel: usize,
    work: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < min_parallel {
        return work(items);
    }
    let chunk_len = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk_len)
            .map(|chunk| {
                let handle = std::thread::Builder::new()
                    .name("dedup".into())
                    .spawn_scoped(scope, move || work(chunk))
                    .ok();
                (chunk, handle)
            })
            .collect();
        // Not `items.len()`: a chunk may fold many items into one result
        // (the learning step folds 400 000 pairs into one table per chunk).
        let mut out = Vec::new();
        for (chunk, handle) in handles {
            match handle.map(std::thread::ScopedJoinHandle::join) {
                Some(Ok(mut part)) => out.append(&mut part),
                _ => out.extend(work(chunk)),
            }
        }
        out
    })
}
