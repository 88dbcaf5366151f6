//! What an intake run measured, and how it is printed.

use std::time::Duration;

pub struct IntakeReport {
    pub latencies: Vec<Duration>,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

impl IntakeReport {
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[i].as_secs_f64() * 1000.0
        };
        println!(
            "  accepted {} in {:.2} s: {:.0}/s; errors {}",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.errors.len()
        );
        println!(
            "  latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
            at(0.50),
            at(0.95),
            at(0.99),
            sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
        if let Some(first) = self.errors.first() {
            println!("  first error: {first}");
        }
    }
}
