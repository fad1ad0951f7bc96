//! The server thread: a server's two listeners (itself and its CDN) served on their own tokio
//! runtime, stopped (every connection closed) on drop.

use axum::Router;
use std::future::IntoFuture;

/// Two listeners served in a thread of their own; stopped (every connection closed) on drop.
pub(super) struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub(super) fn start(
        main: std::net::TcpListener,
        main_app: Router,
        cdn: std::net::TcpListener,
        cdn_app: Router,
    ) -> Server {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        main.set_nonblocking(true).unwrap();
        cdn.set_nonblocking(true).unwrap();
        let thread = std::thread::Builder::new()
            .name("test-hub".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let main = tokio::net::TcpListener::from_std(main).unwrap();
                    let cdn = tokio::net::TcpListener::from_std(cdn).unwrap();
                    tokio::select! {
                        _ = axum::serve(main, main_app).into_future() => {}
                        _ = axum::serve(cdn, cdn_app).into_future() => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task, mid-body or idle.
                drop(rt);
            })
            .unwrap();
        Server {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(super) fn bind() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}
