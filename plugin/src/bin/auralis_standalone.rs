//! `auralis-standalone`: the Auralis instrument as a program of its own, playing
//! through JACK, ALSA or (headless, for tests and servers) the `dummy` backend.
//! `auralis-standalone --help` lists the audio and MIDI options.

fn main() {
    if !nice_plug::prelude::nice_export_standalone::<auralis::Auralis>() {
        std::process::exit(1);
    }
}
