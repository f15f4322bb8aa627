//! Progress on long work (a compile of thousands of nodes, an apply, the lab): a spinner on
//! standard error when it is a terminal, plain lines when it is not, nothing but warnings and
//! errors under `-q`. Standard output only ever carries what was asked for.

use std::io::IsTerminal;
use std::time::Duration;

pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A spinner on a terminal (unless `-q`); plain lines otherwise.
    pub fn new() -> Progress {
        let bar = (!super::quiet() && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// A spinner counting what is done, on a terminal only: work whose steps are not worth a
    /// line each.
    pub fn counter(message: &str) -> Progress {
        let progress = Progress::new();
        if let Some(bar) = &progress.bar {
            bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {pos}").expect("a valid template"));
            bar.set_message(message.to_string());
        }
        progress
    }

    /// One more done (for [`Progress::counter`]).
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// A line of the log: above the spinner on a terminal, plain otherwise; not under `-q`.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => super::info(text),
        }
    }

    /// What the spinner says it is doing now.
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
