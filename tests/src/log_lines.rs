//! The request log's lines, caught in memory as the log's writer thread writes them.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Log lines, as the writer thread writes them.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The first `n` records, waiting for the writer thread.
    pub async fn records(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text();
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() >= n {
                return lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            }
            assert!(Instant::now() < deadline, "only {} of {n} log lines: {text}", lines.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
