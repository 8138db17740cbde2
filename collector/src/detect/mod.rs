//! Anomaly detection: streaming, per series, pure. `detector` scores each new sample of a
//! series in [0, 1] from state kept for that series (no look-ahead, bounded memory); `nab` runs
//! the same detector over the Numenta Anomaly Benchmark's files and scores the results the way
//! NAB does. The collector's detection task (wired in `lib.rs`) feeds committed samples of the
//! scored series through `detector` and writes the scores back as `anomaly_score` series.
//!
//! Nothing here does I/O except `nab`'s file reading and writing for the CLI.

pub mod baseline;
pub mod calibrate;
pub mod changepoint;
pub mod codec;
pub mod detector;
pub mod nab;
pub mod novelty;
pub mod seasonal;
pub mod shape;
