//! How the broker starts a connection's tasks.
//!
//! The broker never spawns an arbitrary future: it hands a named task ([`ReaderTask`],
//! [`WriterTask`]) to a [`Spawner`]. A named task's `Send`-ness follows from its fields, so a
//! work-stealing runtime can implement `Spawner` for its concrete runtime type and move the
//! task to any worker, and the blocking baseline can run each task on its own thread, while
//! thread-per-core runtimes use [`LocalSpawner`].

use fanbench_rt::Runtime;

use crate::client::{ReaderTask, WriterTask};

/// Starts the tasks that serve a connection.
pub trait Spawner<R: Runtime>: Clone + 'static {
    /// Start the task that reads and handles a connection's commands.
    fn spawn_reader(&self, task: ReaderTask<R>);
    /// Start the task that writes a connection's outbound queue.
    fn spawn_writer(&self, task: WriterTask<R>);
}

/// Spawns both tasks on the current thread's runtime with [`Runtime::spawn_local`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalSpawner;

impl<R: Runtime> Spawner<R> for LocalSpawner {
    fn spawn_reader(&self, task: ReaderTask<R>) {
        R::spawn_local(task.run());
    }

    fn spawn_writer(&self, task: WriterTask<R>) {
        R::spawn_local(task.run());
    }
}
