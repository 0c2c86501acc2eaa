//! The plugin's saved state, loaded the way a host loads it: through the plugin's
//! own CLAP state extension (nice-plug's wrapper, then `filter_state`), on an
//! instance created in process from `auralis::clap_entry`
//! (`clap_host::linked_entry`). Nothing panics, every parameter stays finite and
//! within its range, and a refused state changes nothing.
//!
//! The property is `auralis_tests::fuzz::PluginState::check`, which the stable
//! replay test (`tests/tests/fuzz_seeds.rs`) also runs over the seeds and their
//! mutations.
#![no_main]

use std::cell::RefCell;

use auralis_tests::fuzz::PluginState;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static PLUGIN: RefCell<PluginState> = RefCell::new({
        // The plugin logs a warning for every foreign state; keep the fuzzer's
        // output readable. Set before the entry's `init` starts the logger.
        if std::env::var_os("NICE_LOG").is_none() {
            std::env::set_var("NICE_LOG", "/dev/null");
        }
        PluginState::new()
    });
}

fuzz_target!(|data: &[u8]| PLUGIN.with_borrow_mut(|plugin| plugin.check(data)));
