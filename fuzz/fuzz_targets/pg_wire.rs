//! Arbitrary bytes as what a PostgreSQL client sends the broker's proxy before login
//! (SSLRequest / GSSENCRequest / CancelRequest / StartupMessage, with their lengths and
//! parameters), through `paw_pgproxy::serve_client` itself: negotiation answers, the startup
//! parse, the database check, the parameter allow-list, the protocol-version negotiation and
//! the ErrorResponse sent back (cases C8/F3). The upstream address is a closed port, so a
//! startup that passes ends at the connect. The same bytes also go through
//! `postgres_protocol::message::backend::Message::parse`, the parser the proxy reads the
//! server's authentication messages with. Errors are fine; a panic, abort or hang is a bug.
#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use paw_pgproxy::{serve_client, TempRole};
use postgres_protocol::message::backend::Message;

thread_local! {
    // One runtime for the process: building one per input would dominate the run time.
    static RT: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}")),
    );
}

fuzz_target!(|data: &[u8]| {
    let role = TempRole::vaulted("paw_fuzz", zeroize::Zeroizing::new("pw".into()), i64::MAX)
        .unwrap_or_else(|e| panic!("fixture role: {e}"));
    // Port 1 on loopback: nothing listens there, so the connect is refused at once.
    let server: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 1));
    // What the client sent, then end of stream; what the proxy answers goes nowhere.
    let client = tokio::io::join(data, tokio::io::sink());
    RT.with(|rt| {
        let _ = rt.borrow().block_on(serve_client(
            client,
            server,
            &role,
            "app",
            std::future::pending::<()>(),
        ));
    });

    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = Message::parse(&mut buf) {}
});
