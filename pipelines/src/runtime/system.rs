//! The process runtime: an actix `System` (for arbiters and actors) over a multi-threaded tokio
//! runtime (for sources, Postgres and HTTP).

use std::future::Future;

/// Runs `fut` to completion inside a fresh actix system.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("portcullis-io")
            .build()
            .expect("cannot build the tokio runtime")
    })
    .block_on(fut)
}
