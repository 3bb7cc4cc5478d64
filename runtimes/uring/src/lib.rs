//! fanbench's own io_uring runtime: a single-threaded executor whose submission policy is the experiment
