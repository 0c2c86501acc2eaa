//! DSP units.
