//! The one test double of a bridge [`Source`]: what it plays is a closure of the
//! chunk number, so each test scripts its own audio (sines, NaNs, silence, a
//! panic), its own [`FillReport`] and, through what the closure captures, its own
//! engine. It refuses every control change.

use auralis::compose::phrase::ComposeParams;
use auralis::render::mix::MixLevels;
use auralis_bridge::source::{
    FillReport, ParamsSnapshot, Source, SourceCommand, SourceError, SourceInfo,
};

/// What a [`TestSource`] does for chunk `k`: fills the interleaved samples and
/// reports on them.
pub type Fill = Box<dyn FnMut(u64, &mut [f32]) -> FillReport + Send>;

/// A scripted source: stereo, at a rate of the test's choosing.
pub struct TestSource {
    info: SourceInfo,
    fill: Fill,
    k: u64,
    params: ParamsSnapshot,
}

impl TestSource {
    /// A source named `name` at `sample_rate` whose chunk `k` is what `fill` makes.
    pub fn new(
        name: &str,
        sample_rate: u32,
        fill: impl FnMut(u64, &mut [f32]) -> FillReport + Send + 'static,
    ) -> Self {
        Self {
            info: SourceInfo {
                name: name.into(),
                kind: "test",
                sample_rate,
                channels: 2,
            },
            fill: Box::new(fill),
            k: 0,
            params: ParamsSnapshot {
                compose: ComposeParams::default(),
                levels: MixLevels::default(),
                preset: None,
                code: None,
            },
        }
    }

    /// The same, reported as a source of `kind` (`embedded`, …).
    #[must_use]
    pub fn kind(mut self, kind: &'static str) -> Self {
        self.info.kind = kind;
        self
    }

    /// The same, playing with `params`.
    #[must_use]
    pub fn params(mut self, params: ParamsSnapshot) -> Self {
        self.params = params;
        self
    }

    /// Boxed, as the bridge takes it.
    pub fn boxed(self) -> Box<dyn Source> {
        Box::new(self)
    }
}

impl Source for TestSource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn fill(&mut self, interleaved: &mut [f32]) -> FillReport {
        let report = (self.fill)(self.k, interleaved);
        self.k += 1;
        report
    }

    fn apply(&mut self, _: SourceCommand) -> Result<ParamsSnapshot, SourceError> {
        Err(SourceError::Unavailable(format!(
            "the {} test source cannot be controlled",
            self.info.name
        )))
    }

    fn params(&self) -> ParamsSnapshot {
        self.params
    }
}
