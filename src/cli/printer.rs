//! Where command output goes. Commands never call `print!`: Rust ignores SIGPIPE, so `println!`
//! panics when stdout is closed (`ollmlx list | head -1`). Writing through the `Printer` turns that
//! into an `io::Error` of kind `BrokenPipe`, which `main` treats as success. Every write is
//! flushed, so streamed tokens appear as they arrive. Tests capture both streams in memory.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

type Sink = Mutex<Box<dyn Write + Send>>;

/// Output for the answer and tables (stdout) and for diagnostics and statistics (stderr).
pub struct Printer {
    out: Sink,
    err: Sink,
}

/// The in-memory streams of a [`Printer::capture`]d printer.
#[derive(Clone, Default)]
pub struct Captured {
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Captured {
    /// Everything written to stdout so far.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Everything written to stderr so far.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }
}

struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Printer {
    /// The process's stdout and stderr.
    pub fn stdio() -> Printer {
        Printer {
            out: Mutex::new(Box::new(io::stdout())),
            err: Mutex::new(Box::new(io::stderr())),
        }
    }

    /// A printer that writes into memory, for tests.
    pub fn capture() -> (Printer, Captured) {
        let captured = Captured::default();
        let printer = Printer {
            out: Mutex::new(Box::new(Shared(captured.out.clone()))),
            err: Mutex::new(Box::new(Shared(captured.err.clone()))),
        };
        (printer, captured)
    }

    /// Writes to stdout and flushes.
    pub fn out(&self, s: impl AsRef<str>) -> io::Result<()> {
        write_flush(&self.out, s.as_ref())
    }

    /// Writes a line to stdout.
    pub fn outln(&self, s: impl AsRef<str>) -> io::Result<()> {
        write_flush(&self.out, &format!("{}\n", s.as_ref()))
    }

    /// Writes to stderr and flushes.
    pub fn err(&self, s: impl AsRef<str>) -> io::Result<()> {
        write_flush(&self.err, s.as_ref())
    }

    /// Writes a line to stderr.
    pub fn errln(&self, s: impl AsRef<str>) -> io::Result<()> {
        write_flush(&self.err, &format!("{}\n", s.as_ref()))
    }
}

fn write_flush(sink: &Sink, s: &str) -> io::Result<()> {
    // A poisoned lock only means another writer panicked mid-write; the stream is still usable.
    let mut w = sink.lock().unwrap_or_else(|e| e.into_inner());
    w.write_all(s.as_bytes())?;
    w.flush()
}
