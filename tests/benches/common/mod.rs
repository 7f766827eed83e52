//! What the benchmarks share: statistics, peak memory, and the table of
//! figures against their limits that `make bench` prints at the end.
//!
//! Each bench program prints its own rows and, when `BENCH_TABLE` names a
//! file, appends them to it as tab-separated lines (`scripts/bench.sh` sets
//! it, and prints the whole table once every program has run).

#![allow(dead_code)] // each bench program uses part of it

use std::io::Write as _;
use std::time::Duration;

/// The `p` quantile (nearest rank on the sorted samples).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "no samples");
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The median of the samples (sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    percentile(samples, 0.5)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident memory of a process (`VmHWM`), in kB.
pub fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// How a figure is judged.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// measured / limit at most this.
    Ratio(f64),
    /// The measured value at most this (in the row's unit).
    AtMost(f64),
}

/// One line of the table: a figure, the limit it is compared with, the
/// ratio and the target.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub measured: f64,
    /// `None`: the figure has no limit to compare with (memory, counts).
    pub limit: Option<f64>,
    pub unit: &'static str,
    /// What the limit is made of, and any detail worth a glance.
    pub note: String,
    pub target: Target,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.limit.map(|l| self.measured / l)
    }

    pub fn met(&self) -> bool {
        match self.target {
            Target::Ratio(max) => self.ratio().is_some_and(|r| r <= max),
            Target::AtMost(max) => self.measured <= max,
        }
    }

    fn cells(&self) -> [String; 7] {
        let value = |v: f64| match self.unit {
            "ms" => format!("{v:.1} ms"),
            "s" => format!("{v:.1} s"),
            "MB" => format!("{v:.1} MB"),
            unit => format!("{v:.0}{unit}"),
        };
        [
            self.figure.clone(),
            value(self.measured),
            self.limit.map(value).unwrap_or_else(|| "-".into()),
            self.ratio()
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into()),
            match self.target {
                Target::Ratio(max) => format!("<= {max:.2}x"),
                Target::AtMost(max) => format!("<= {}", value(max)),
            },
            if self.met() { "met" } else { "NOT MET" }.into(),
            self.note.clone(),
        ]
    }
}

/// Prints the rows as a table and appends them to `$BENCH_TABLE`, if set.
pub fn report(title: &str, rows: &[Row]) {
    println!("\n== {title}");
    print_table(rows.iter().map(Row::cells).collect());
    if let Some(path) = std::env::var_os("BENCH_TABLE") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("BENCH_TABLE is writable");
        for row in rows {
            writeln!(file, "{}", row.cells().join("\t")).expect("BENCH_TABLE is writable");
        }
    }
}

fn print_table(rows: Vec<[String; 7]>) {
    let header = [
        "figure",
        "measured",
        "limit",
        "ratio",
        "target",
        "",
        "limit is / notes",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
