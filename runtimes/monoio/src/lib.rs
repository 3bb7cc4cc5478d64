//! The monoio rows (io_uring and legacy epoll drivers) of fanbench's runtime trait
