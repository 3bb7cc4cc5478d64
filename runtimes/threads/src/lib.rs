//! The blocking thread-per-connection baseline row of fanbench's runtime trait
