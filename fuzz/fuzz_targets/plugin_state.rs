//! The plugin's saved state, loaded the way a host loads it: through the plugin's
//! own CLAP state extension (nice-plug's wrapper, then `filter_state`), on an
//! instance created in process from `auralis::clap_entry`
//! (`clap_host::linked_entry`). Nothing panics, every parameter stays finite and
//! within its range, and a refused state changes nothing.
#![no_main]

use std::cell::RefCell;

use auralis_tests::clap_host::{linked_entry, Plugin};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static PLUGIN: RefCell<Plugin> = RefCell::new({
        // The plugin logs a warning for every foreign state; keep the fuzzer's
        // output readable. Set before the entry's `init` starts the logger.
        if std::env::var_os("NICE_LOG").is_none() {
            std::env::set_var("NICE_LOG", "/dev/null");
        }
        Plugin::with_entry(linked_entry())
    });
}

fuzz_target!(|data: &[u8]| {
    PLUGIN.with_borrow_mut(|plugin| {
        let params = plugin.params();
        let before: Vec<f64> = params.iter().map(|p| plugin.value(p.id)).collect();
        let loaded = plugin.load(data);
        for (p, old) in params.iter().zip(before) {
            let v = plugin.value(p.id);
            assert!(
                v.is_finite() && v >= p.min && v <= p.max,
                "{} is {v} after loading, outside {}..={}",
                p.name,
                p.min,
                p.max
            );
            if !loaded {
                assert_eq!(
                    v.to_bits(),
                    old.to_bits(),
                    "a refused state changed {}",
                    p.name
                );
            }
        }
    });
});
