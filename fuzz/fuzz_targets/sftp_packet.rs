//! Arbitrary bytes as SSH channel data of an SFTP session, from either side: the broker's
//! frame cutter (`sessions::sftp::take`, length prefix and the packet size bound) and then
//! `russh_sftp::protocol::Packet::try_from` on every frame (the decoder the broker's SFTP
//! proxy uses on the client's requests and the target's answers), the re-encoding the proxy
//! does with its own request id, and the SSH-string reader for extension data (cases M*/F3).
//! Errors are fine; a panic, abort or hang is a bug.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use paw_broker::sessions::sftp::{ssh_strings, take};
use russh_sftp::protocol::Packet;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    // The proxy cuts frames until one is incomplete or a length is refused.
    while let Ok(Some(mut frame)) = take(&mut buf) {
        let Ok(packet) = Packet::try_from(&mut frame) else {
            continue;
        };
        if let Packet::Extended(x) = &packet {
            // posix-rename / hardlink carry two SSH strings, statvfs one.
            let _ = ssh_strings(&x.data, 2);
            let _ = ssh_strings(&x.data, 1);
        }
        // Forwarding re-encodes what was decoded; that must not fail on anything decoded.
        let _ = Bytes::try_from(packet);
    }
});
