//! The `--flag value` command lines of the xtask commands: one walker, so every
//! command names the flag at fault and shows its usage the same way.

use anyhow::{anyhow, bail, Context as _, Result};

/// Walks a command's arguments; errors carry the command's usage text.
pub struct Flags<'a> {
    args: std::slice::Iter<'a, String>,
    usage: &'static str,
}

impl<'a> Flags<'a> {
    /// Walks `args` of a command whose usage text is `usage`.
    pub fn new(args: &'a [String], usage: &'static str) -> Self {
        Self {
            args: args.iter(),
            usage,
        }
    }

    /// The next flag (`None` at the end).
    ///
    /// # Errors
    /// The usage, for `-h` or `--help`.
    pub fn next_flag(&mut self) -> Result<Option<&'a str>> {
        match self.args.next().map(String::as_str) {
            Some("-h" | "--help") => bail!("{}", self.usage),
            other => Ok(other),
        }
    }

    /// The value that follows `flag`.
    ///
    /// # Errors
    /// When the arguments end first.
    pub fn value(&mut self, flag: &str) -> Result<&'a str> {
        self.args
            .next()
            .map(String::as_str)
            .with_context(|| format!("{flag} needs a value\n\n{}", self.usage))
    }

    /// The number that follows `flag`, within `[min, max]`.
    ///
    /// # Errors
    /// When it is missing, not a number, or out of range.
    pub fn number(&mut self, flag: &str, min: f64, max: f64) -> Result<f64> {
        let value = self.value(flag)?;
        parse_in(flag, value, min, max)
    }

    /// The error for a flag the command does not know.
    pub fn unknown(&self, flag: &str) -> anyhow::Error {
        anyhow!("unknown option {flag:?}\n\n{}", self.usage)
    }

    /// `value`, or an error saying `flag` is required.
    ///
    /// # Errors
    /// When `value` is `None`.
    pub fn required<T>(&self, value: Option<T>, flag: &str) -> Result<T> {
        value.with_context(|| format!("{flag} is required\n\n{}", self.usage))
    }
}

/// Parses `value` of `flag` as a number within `[min, max]`.
///
/// # Errors
/// A message naming the flag and the range.
pub fn parse_in(flag: &str, value: &str, min: f64, max: f64) -> Result<f64> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        _ => bail!("{flag}: expected a number from {min} to {max}, got {value:?}"),
    }
}
