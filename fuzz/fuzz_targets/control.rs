//! A client's control message, as bytes off a WebSocket or an HTTP body, in both
//! dialects: the parser never panics, and whatever it accepts is a complete, valid
//! change (validation is all-or-nothing, so a parameter update that passed it must
//! give parameters the engine accepts).
#![no_main]

use auralis::compose::phrase::ComposeParams;
use auralis_bridge::protocol::{parse_client_bytes, ClientMessage, Dialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for dialect in [Dialect::Native, Dialect::Compat] {
        match parse_client_bytes(data, dialect) {
            Ok(ClientMessage::UpdateParams(update)) => {
                assert!(!update.is_empty(), "an accepted update changes something");
                let applied = update.apply_to(ComposeParams::default());
                if let Err(e) = applied.validate() {
                    panic!("accepted update {update:?} gives invalid parameters: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => assert!(!e.message.is_empty(), "an error explains itself"),
        }
    }
});
