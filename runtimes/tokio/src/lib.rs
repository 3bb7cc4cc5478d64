//! The tokio (current-thread, one per core) and tokio-mt (work-stealing) rows of fanbench's runtime trait
